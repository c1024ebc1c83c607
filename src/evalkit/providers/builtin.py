"""The built-in providers, registered through the `evalkit_providers` hook like any plugin.

Factories are `module:attr` paths, so registering imports no SDK.
"""

from __future__ import annotations

from typing import Callable

from evalkit.model.registry import hookimpl

_P = "evalkit.providers"

# name, factory, summary, SDK modules it needs, environment variables, pip extra
BUILTIN: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str]] = [
    ("mockllm", f"{_P}.mock:MockLLM", "Deterministic offline model for tests and examples", (), (), ""),
    ("hf", f"{_P}.hf:HuggingFaceAPI", "Local Hugging Face transformers models, batched (hf/<hub-id>, hf/local, hf/bundled)",
     ("torch", "transformers"), ("HF_TOKEN", "HF_HOME"), "evalkit[hf]"),
]


@hookimpl
def evalkit_providers(register: Callable[..., None]) -> None:
    for name, factory, summary, needs, env, pip in BUILTIN:
        register(name, factory, summary=summary, needs=needs, env=env, pip=pip)
