"""`Task`, the `@task` decorator, and loading tasks from Python files."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from evalkit.dataset.loaders import Dataset, MemoryDataset
from evalkit.dataset.sample import Sample
from evalkit.errors import DefinitionError, EvalkitError, TaskLoadError
from evalkit.model.types import GenerateConfig
from evalkit.registration import describe, unique_names
from evalkit.sandbox.spec import SandboxEnvironmentType, resolve_sandbox
from evalkit.scorer.reducer import Epochs, reducer_name
from evalkit.scorer.scorer import MetricsSpec, Scorer, scorer_metrics
from evalkit.solver.builtins import generate
from evalkit.solver.solver import Solver, chain, solver_steps
from evalkit.user_code import describe_failure


@dataclass(frozen=True)
class TaskScorer:
    """One of a task's scorers with its unique name (`match`, `match1`, ...) and metrics."""

    name: str
    fn: Scorer
    metrics: MetricsSpec


@dataclass
class Task:
    """An evaluation: a dataset, the solver that answers each sample, and the scorers.

    `solver` may be a list (run as a chain); `scorer` one scorer or several; `metrics`
    replaces every scorer's own metrics; `epochs` runs each sample that many times (an int,
    or `Epochs(n, reducer)` to choose how its scores combine; default mean); `config` holds
    the task's GenerateConfig; `message_limit` and `token_limit` bound each sample's
    conversation and token use (the sample is scored as it stands when it hits one).
    """

    dataset: Dataset | Iterable[Sample]
    solver: Solver | list[Solver] | None = None
    scorer: Scorer | list[Scorer] | None = None
    metrics: MetricsSpec | None = None
    epochs: int | Epochs = 1
    config: GenerateConfig | dict[str, Any] = field(default_factory=GenerateConfig)
    name: str | None = None
    message_limit: int | None = None
    token_limit: int | None = None
    sandbox: SandboxEnvironmentType | None = None
    """Each sample's sandbox: "local", "docker", (type, config) or a SandboxEnvironmentSpec."""
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
        if not isinstance(self.epochs, Epochs):
            self.epochs = Epochs(self.epochs)
        self.sandbox = resolve_sandbox(self.sandbox, "Task")
        for name in ("message_limit", "token_limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise DefinitionError(f"Task {name} must be a whole number of at least 1, or None (got {value!r})")

    @property
    def display_name(self) -> str:
        """The task's name, else its dataset's."""
        return self.name or getattr(self.dataset, "name", "task")

    @property
    def epoch_count(self) -> int:
        """How many times each sample runs."""
        return self.epochs.epochs  # type: ignore[union-attr]

    @cached_property
    def scorers(self) -> list[TaskScorer]:
        """The task's scorers with unique names, each with the task's `metrics` when it sets
        them (worked out once, on first use)."""
        if self.scorer is None:
            return []
        scorers = self.scorer if isinstance(self.scorer, list) else [self.scorer]
        names = unique_names([describe(s)["name"] for s in scorers])
        return [TaskScorer(name, s, self.metrics if self.metrics is not None else scorer_metrics(s))
                for name, s in zip(names, scorers)]

    def identity(self) -> dict[str, Any]:
        """What makes two runs of this task comparable: name, solvers and scorers with their
        arguments, the task's own generate config, epochs and reducers, and the dataset."""
        return {
            "task": self.display_name,
            "solver": solver_steps(self.solver),  # type: ignore[arg-type]
            "scorers": [{**describe(s.fn), "name": s.name} for s in self.scorers],
            "config": self.config.to_dict(),  # type: ignore[union-attr]
            "epochs": self.epoch_count,
            "reducers": [reducer_name(r) for r in self.epochs.reducers],  # type: ignore[union-attr]
            "dataset": self.dataset.fingerprint(),  # type: ignore[union-attr]
        }


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
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file can import the modules beside it
    try:
        spec.loader.exec_module(module)
    except BaseException as ex:
        del sys.modules[module_name]
        if isinstance(ex, SyntaxError) and ex.filename and Path(ex.filename).resolve() == path.resolve():
            raise TaskLoadError(f"syntax error in task file {path}, line {ex.lineno}: {ex.msg}") from ex
        if isinstance(ex, EvalkitError) or not isinstance(ex, Exception):
            raise
        raise TaskLoadError(f"task file {path} failed to import: {describe_failure(ex, path)}") from ex
    finally:
        sys.path.remove(folder)
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
    _check_arg_types(name, function, task_args)
    try:
        created = function(**task_args)
    except EvalkitError as ex:
        ex.args = (f"task '{name}': {ex}", *ex.args[1:])
        raise
    except Exception as ex:
        code = getattr(function, "__code__", None)
        raise TaskLoadError(f"task '{name}' failed: {describe_failure(ex, code and code.co_filename)}") from ex
    if not isinstance(created, Task):
        raise TaskLoadError(f"@task function '{name}' must return a Task (got {type(created).__name__})")
    if created.name is None:
        created.name = name
    return created


_SIMPLE_TYPES = {int: "a whole number", float: "a number", bool: "true or false"}


def _check_arg_types(name: str, function: Callable[..., Task], task_args: dict[str, Any]) -> None:
    """Refuse a `-T` value that does not fit its parameter's int, float or bool annotation."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations that do not resolve are the function's own business
        return
    for key, value in task_args.items():
        hint = hints.get(key)
        allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        simple = all(kind in _SIMPLE_TYPES or kind is type(None) for kind in allowed)
        if simple and not any(_fits(value, kind) for kind in allowed):
            wanted = " or ".join("none" if kind is type(None) else _SIMPLE_TYPES[kind] for kind in allowed)
            raise TaskLoadError(f"-T {key}: task '{name}' expects {wanted} (got {value!r})")


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def args_taken(function: Callable[..., Task], task_args: dict[str, Any], several: bool) -> dict[str, Any]:
    """With several tasks sharing `-T`, the arguments `function` takes, warning with the task's
    name about the others; one task alone gets them all (`create_task` refuses unknown ones)."""
    parameters = inspect.signature(function).parameters
    if not several or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return task_args
    unknown = [k for k in task_args if k not in parameters]
    if unknown:
        name = getattr(function, TASK_ATTR, function.__name__)
        print(f"warning: task '{name}' takes no argument {', '.join(unknown)}; it runs without", file=sys.stderr)
    return {k: v for k, v in task_args.items() if k not in unknown}


def _create_from_file(functions: dict[str, Callable[..., Task]], path: Path, name: str, task_args: dict[str, Any],
                      several: bool = False) -> Task:
    if name not in functions:
        raise TaskLoadError(f"no task '{name}' in {path} (tasks there: {', '.join(sorted(functions)) or 'none'})")
    taken = args_taken(functions[name], task_args, several)
    created = create_task(functions[name], taken)
    created.origin = {"file": str(path.resolve()), "name": name, "args": taken}
    return created


def load_tasks(spec: str, task_args: dict[str, Any] | None = None, several: bool = False) -> list[Task]:
    """The tasks named by `FILE.py` (every @task in it) or `FILE.py@name`; `several`: other
    tasks share `task_args`, so one a task does not take is a warning (see `args_taken`)."""
    file, _, name = spec.partition("@")
    path = Path(file)
    functions = find_task_functions(path)
    if not functions:
        raise TaskLoadError(f"no @task function in {path}; decorate a function returning a Task with @task")
    names = [name] if name else list(functions)
    several = several or len(names) > 1
    return [_create_from_file(functions, path, each, task_args or {}, several) for each in names]
