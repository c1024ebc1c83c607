"""evalkit: evaluate language models with task/solver/scorer pipelines over one ModelAPI.

Public names are imported on first use, so `import evalkit` and `evalkit --help` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Imported eagerly: the submodule `evalkit.task` would otherwise shadow the `task` decorator.
from evalkit.task import Task, task

__version__ = "0.1.0"
# The name on PyPI: "evalkit" there is an unrelated project. Import name and command stay `evalkit`.
DISTRIBUTION = "evalkit-ai"

_EXPORTS = {
    "evalkit.dataset": ["Dataset", "FieldSpec", "MemoryDataset", "Sample", "csv_dataset", "hf_dataset", "json_dataset"],
    "evalkit.dataset.few_shot": ["fewshot"],
    "evalkit.errors": ["EvalkitError"],
    "evalkit.log": ["EvalLog", "EvalSample", "read_eval_log"],
    "evalkit.model.api": ["ModelAPI"],
    "evalkit.model.cache": ["CachePolicy"],
    "evalkit.model.model": ["Model", "get_model"],
    "evalkit.model.registry": ["hookimpl"],
    "evalkit.model.content": ["Content", "ContentImage", "ContentReasoning", "ContentText"],
    "evalkit.model.types": [
        "BatchConfig", "ChatCompletionChoice", "ChatMessage", "ChatMessageAssistant", "ChatMessageSystem",
        "ChatMessageTool", "ChatMessageUser", "GenerateConfig", "ModelOutput", "ModelUsage", "ResponseSchema",
    ],
    "evalkit.scorer.reducer": ["Epochs"],
    "evalkit.runner": ["eval", "eval_async", "eval_retry", "eval_retry_async"],
    "evalkit.eval_set": ["eval_set", "eval_set_async"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "Task", "task"])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from evalkit.dataset import Dataset, FieldSpec, MemoryDataset, Sample, csv_dataset, hf_dataset, json_dataset
    from evalkit.dataset.few_shot import fewshot
    from evalkit.errors import EvalkitError
    from evalkit.log import EvalLog, EvalSample, read_eval_log
    from evalkit.model.api import ModelAPI
    from evalkit.model.cache import CachePolicy
    from evalkit.model.model import Model, get_model
    from evalkit.model.registry import hookimpl
    from evalkit.model.content import Content, ContentImage, ContentReasoning, ContentText
    from evalkit.model.types import (
        BatchConfig,
        ChatCompletionChoice,
        ChatMessage,
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageTool,
        ChatMessageUser,
        GenerateConfig,
        ModelOutput,
        ModelUsage,
        ResponseSchema,
    )
    from evalkit.scorer.reducer import Epochs
    from evalkit.runner import eval, eval_async, eval_retry, eval_retry_async
    from evalkit.eval_set import eval_set, eval_set_async
