"""evalkit: evaluate language models with task/solver/scorer pipelines over one ModelAPI."""

from evalkit.dataset import Dataset, FieldSpec, MemoryDataset, Sample, csv_dataset, json_dataset
from evalkit.errors import EvalkitError
from evalkit.log import EvalLog, EvalSample, read_eval_log
from evalkit.model.api import ModelAPI
from evalkit.model.model import Model, get_model
from evalkit.model.registry import hookimpl
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
)
from evalkit.runner import eval, eval_async
from evalkit.task import Task, task

__version__ = "0.1.0"

__all__ = [
    "ChatCompletionChoice", "ChatMessage", "ChatMessageAssistant", "ChatMessageSystem",
    "ChatMessageUser", "Dataset", "EvalLog", "EvalSample", "EvalkitError", "FieldSpec",
    "GenerateConfig", "MemoryDataset", "Model", "ModelAPI", "ModelOutput", "ModelUsage",
    "Sample", "Task", "csv_dataset", "eval", "eval_async", "get_model", "hookimpl",
    "json_dataset", "read_eval_log", "task",
]
