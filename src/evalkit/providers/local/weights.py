"""What a local backend answers with, for the log header: the weights' name and a content hash.

A GGUF file is hashed as it is; a model folder by its weight files (`*.safetensors`, else
`*.bin`/`*.pt`/`*.pth`): one file's sha256, or for several the sha256 of their `sha256sum`
lines (`<digest>  <name>`, sorted by name). Each file's digest is cached under evalkit's cache
folder, keyed by its path, size and modification time, so only the first run reads the weights.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from evalkit.providers.local.bundled import cache_dir, file_identity

_SAFETENSORS = ("*.safetensors",)
_PICKLED = ("*.bin", "*.pt", "*.pth")


def weights_identity(source: str) -> dict[str, str] | None:
    """`{"name": ..., "sha256": ...}` of `source`: a GGUF (or other weights) file, a model
    folder, or a hub id found in the local Hugging Face cache (None if it is not there)."""
    path = Path(source)
    if path.is_file():
        return {"name": path.name, "sha256": file_sha256(path)}
    name = path.resolve().name if path.is_dir() else source
    folder = path if path.is_dir() else _hub_snapshot(source)
    if folder is None:
        return None
    files = weight_files(folder)
    if not files:
        return None
    return {"name": name, "sha256": files_sha256(folder, files)}


def weight_files(folder: Path) -> list[Path]:
    """The files in `folder` that transformers loads weights from (safetensors first)."""
    for patterns in (_SAFETENSORS, _PICKLED):
        found = sorted(file for pattern in patterns for file in folder.glob(pattern) if file.is_file())
        if found:
            return found
    return []


def files_sha256(folder: Path, files: list[Path]) -> str:
    """One file's sha256, or the sha256 of the `sha256sum` lines of several."""
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{file_sha256(file)}  {file.relative_to(folder).as_posix()}\n" for file in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of `path`'s contents, read once and then taken from the cache."""
    real = path.resolve()
    key = hashlib.sha256(file_identity(real).encode()).hexdigest()[:32]
    cached = cache_dir() / "sha256" / key
    try:
        digest = cached.read_text(encoding="ascii").strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    with real.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    _store(cached, digest)
    return digest


def _store(cached: Path, digest: str) -> None:
    """Write the cache entry atomically; an unwritable cache only costs a later rehash."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cached.parent, prefix=".sha256-")
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(digest + "\n")
        os.replace(temporary, cached)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of hub model `repo_id` (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not a hub id, or not in the local cache
        return None
