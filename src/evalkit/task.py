"""`Task`, the `@task` decorator, and loading tasks from Python files."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evalkit.dataset.loaders import Dataset, MemoryDataset
from evalkit.dataset.sample import Sample
from evalkit.errors import TaskLoadError
from evalkit.model.types import GenerateConfig
from evalkit.scorer.metrics import REDUCERS, Metric
from evalkit.scorer.score import Scorer
from evalkit.solver.builtins import generate
from evalkit.solver.solver import Solver, chain


@dataclass
class Task:
    """An evaluation: a dataset, the solver that answers each sample, and the scorers.

    `solver` may be a list (run as a chain); `scorer` one scorer or several; `metrics`
    replaces every scorer's own metrics; `epochs` runs each sample that many times and
    combines its scores with `epochs_reducer`; `config` holds the task's GenerateConfig.
    """

    dataset: Dataset | Iterable[Sample]
    solver: Solver | list[Solver] | None = None
    scorer: Scorer | list[Scorer] | None = None
    metrics: list[Metric] | None = None
    epochs: int = 1
    epochs_reducer: str = "mean"
    config: GenerateConfig | dict[str, Any] = field(default_factory=GenerateConfig)
    name: str | None = None
    origin: dict[str, Any] | None = None
    """Set when loaded from a file (`file`, `name`, `args`), so eval-retry can load it again."""

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, Dataset):
            self.dataset = MemoryDataset(self.dataset)
        if self.solver is None:
            self.solver = generate()
        elif isinstance(self.solver, list):
            self.solver = chain(*self.solver)
        if isinstance(self.config, dict):
            self.config = GenerateConfig.from_dict(self.config)
        if self.epochs < 1:
            raise TaskLoadError(f"task epochs must be at least 1 (got {self.epochs})")
        if self.epochs_reducer not in REDUCERS:
            raise TaskLoadError(f"unknown epochs reducer '{self.epochs_reducer}' (use one of {', '.join(REDUCERS)})")

    @property
    def display_name(self) -> str:
        """The task's name, else its dataset's."""
        return self.name or getattr(self.dataset, "name", "task")

    @property
    def scorers(self) -> list[Scorer]:
        """The task's scorers as a list, each with `metrics` applied when the task sets them."""
        if self.scorer is None:
            return []
        scorers = self.scorer if isinstance(self.scorer, list) else [self.scorer]
        if self.metrics is not None:
            return [Scorer(s.name, s.fn, list(self.metrics)) for s in scorers]
        return scorers


TASK_ATTR = "__evalkit_task__"


def task(fn: Callable[..., Task] | None = None, *, name: str | None = None) -> Any:
    """Mark a function returning a `Task` so `evalkit eval FILE` finds it; `-T k=v` become
    its keyword arguments. Use as `@task` or `@task(name="...")`."""

    def mark(function: Callable[..., Task]) -> Callable[..., Task]:
        setattr(function, TASK_ATTR, name or function.__name__)
        return function

    return mark(fn) if fn is not None else mark


def _load_module(path: Path) -> Any:
    module_name = f"evalkit_task_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TaskLoadError(f"cannot load task file {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as ex:
        raise TaskLoadError(f"syntax error in task file {path}, line {ex.lineno}: {ex.msg}") from ex
    except ImportError as ex:
        raise TaskLoadError(f"task file {path} failed to import: {ex}") from ex
    return module


def find_task_functions(path: Path) -> dict[str, Callable[..., Task]]:
    """The `@task` functions of a Python file, by task name."""
    if not path.is_file():
        raise TaskLoadError(f"task file not found: {path}")
    module = _load_module(path)
    found: dict[str, Callable[..., Task]] = {}
    for value in vars(module).values():
        if callable(value) and hasattr(value, TASK_ATTR):
            found[getattr(value, TASK_ATTR)] = value
    return found


def create_task(function: Callable[..., Task], task_args: dict[str, Any]) -> Task:
    """Call a task function with `task_args`, naming any argument it does not take."""
    name = getattr(function, TASK_ATTR, function.__name__)
    signature = inspect.signature(function)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in task_args if k not in signature.parameters and not takes_any]
    if unknown:
        accepted = ", ".join(signature.parameters) or "none"
        raise TaskLoadError(f"task '{name}' takes no argument {', '.join(unknown)} (-T accepts: {accepted})")
    created = function(**task_args)
    if not isinstance(created, Task):
        raise TaskLoadError(f"@task function '{name}' must return a Task (got {type(created).__name__})")
    if created.name is None:
        created.name = name
    return created


def _create_from_file(functions: dict[str, Callable[..., Task]], path: Path, name: str, task_args: dict[str, Any]) -> Task:
    if name not in functions:
        raise TaskLoadError(f"no task '{name}' in {path} (tasks there: {', '.join(sorted(functions)) or 'none'})")
    created = create_task(functions[name], task_args)
    created.origin = {"file": str(path.resolve()), "name": name, "args": task_args}
    return created


def load_tasks(spec: str, task_args: dict[str, Any] | None = None) -> list[Task]:
    """The tasks named by `FILE.py` (every @task in it) or `FILE.py@name`."""
    file, _, name = spec.partition("@")
    path = Path(file)
    functions = find_task_functions(path)
    if not functions:
        raise TaskLoadError(f"no @task function in {path}; decorate a function returning a Task with @task")
    names = [name] if name else list(functions)
    return [_create_from_file(functions, path, each, task_args or {}) for each in names]
