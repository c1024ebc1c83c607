"""Fixtures for the local-model provider tests (hf, hf-pipeline, vllm).

Tiny random models are built once per session, offline, with the bundled SmolLM2 tokenizer
(taken from the converted-model cache, which the first use fills from the GGUF).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.providers.helpers import facts_task_source

os.environ.setdefault("HF_HUB_OFFLINE", "1")

JAPAN_TASK = facts_task_source()


@pytest.fixture(scope="session")
def bundled_folder() -> Path:
    """The bundled GGUF converted to a transformers folder (fp32), from the user cache."""
    from evalkit.providers.local.bundled import bundled_gguf, convert_gguf

    return convert_gguf(bundled_gguf(), "float32")


@pytest.fixture(scope="session")
def smol_tokenizer(bundled_folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_folder)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer: Any) -> Path:
    """A random 2-layer Llama (hidden 64) with the SmolLM2 tokenizer, saved to a folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(smol_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=smol_tokenizer.bos_token_id, eos_token_id=smol_tokenizer.eos_token_id,
        pad_token_id=smol_tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def facts_task(tmp_path: Path) -> Path:
    """A task file asking three questions every backend answers right."""
    path = tmp_path / "facts.py"
    path.write_text(JAPAN_TASK, encoding="utf-8")
    return path
