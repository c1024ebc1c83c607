"""`eval()`: run tasks against models, samples concurrently, streaming each result to the log."""

from __future__ import annotations

import itertools
import platform
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import anyio

from evalkit.dataset.sample import Sample
from evalkit.display import DisplayMode, Progress, default_display, print_summary
from evalkit.errors import ArgumentError, EvalkitError
from evalkit.log.schema import LOG_FORMAT_VERSION, EvalLog, EvalSample
from evalkit.log.writer import LogWriter, redact
from evalkit.model.model import Model, get_model, retry_events
from evalkit.model.types import ChatMessageUser, GenerateConfig, ModelUsage, message_to_dict
from evalkit.scorer.metrics import REDUCERS
from evalkit.solver.state import TaskState
from evalkit.task import TASK_ATTR, Task, create_task, load_tasks

TaskSpec = Task | str | Callable[..., Task]
Limit = int | tuple[int, int] | str | None
DEFAULT_LOG_DIR = "logs"


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every (task, model) run of one `eval()` call."""

    config: GenerateConfig
    limit: tuple[int, int | None]
    epochs: int | None
    max_samples: int | None
    log_dir: Path
    fail_on_error: bool | float
    display: DisplayMode


def parse_limit(limit: Limit) -> tuple[int, int | None]:
    """`N` -> the first N samples, `M-N` or (M, N) -> samples M..N (1-based, inclusive), as a
    0-based half-open (start, stop) range."""
    if limit is None:
        return 0, None
    if isinstance(limit, str):
        text = limit.strip()
        first, dash, last = text.partition("-")
        try:
            limit = (int(first), int(last)) if dash else int(text)
        except ValueError:
            raise ArgumentError(f"--limit must be N or M-N with whole numbers (got '{text}')") from None
    if isinstance(limit, tuple):
        start, end = limit
        if start < 1 or end < start:
            raise ArgumentError(f"--limit M-N needs 1 <= M <= N (got {start}-{end})")
        return start - 1, end
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ArgumentError(f"--limit must be a positive whole number (got {limit})")
    return 0, limit


def _resolve_tasks(tasks: TaskSpec | Sequence[TaskSpec], task_args: dict[str, Any]) -> list[Task]:
    items = tasks if isinstance(tasks, (list, tuple)) else [tasks]
    resolved: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            resolved.append(item)
        elif isinstance(item, str):
            resolved.extend(load_tasks(item, task_args))
        elif callable(item) and hasattr(item, TASK_ATTR):
            resolved.append(create_task(item, task_args))
        else:
            raise EvalkitError(f"cannot evaluate {item!r}: pass a Task, an @task function or 'file.py[@task]'")
    return resolved


def _resolve_models(
    model: str | Model | Sequence[str | Model] | None, model_args: dict[str, Any], config: GenerateConfig
) -> list[Model]:
    items = model if isinstance(model, (list, tuple)) else [model]
    return [m if isinstance(m, Model) else get_model(m, config=config, **model_args) for m in items]


def _generate_config(settings: dict[str, Any]) -> GenerateConfig:
    try:
        return GenerateConfig.from_dict({k: v for k, v in settings.items() if v is not None})
    except ValueError as ex:
        raise ArgumentError(str(ex)) from None


def eval(
    tasks: TaskSpec | Sequence[TaskSpec],
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    task_args: dict[str, Any] | None = None,
    limit: Limit = None,
    epochs: int | None = None,
    max_connections: int | None = None,
    max_samples: int | None = None,
    log_dir: str | Path | None = None,
    fail_on_error: bool | float = True,
    display: DisplayMode | None = None,
    **generate_config: Any,
) -> list[EvalLog]:
    """Evaluate each task against each model and return one log per (task, model).

    `model` defaults to EVALKIT_MODEL, else the bundled local model. `generate_config` takes
    GenerateConfig fields (temperature=0, max_tokens=..., ...), which override each task's
    own config. `fail_on_error`: True stops at the first sample error, False never stops, a
    fraction (0-1) or a count stops past that many errors; failed samples are logged either way.
    """
    return anyio.run(
        lambda: eval_async(
            tasks, model, model_args=model_args, task_args=task_args, limit=limit, epochs=epochs,
            max_connections=max_connections, max_samples=max_samples, log_dir=log_dir,
            fail_on_error=fail_on_error, display=display, **generate_config,
        )
    )


async def eval_async(
    tasks: TaskSpec | Sequence[TaskSpec],
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    task_args: dict[str, Any] | None = None,
    limit: Limit = None,
    epochs: int | None = None,
    max_connections: int | None = None,
    max_samples: int | None = None,
    log_dir: str | Path | None = None,
    fail_on_error: bool | float = True,
    display: DisplayMode | None = None,
    **generate_config: Any,
) -> list[EvalLog]:
    """`eval()` for code that already runs an event loop."""
    if epochs is not None and epochs < 1:
        raise ArgumentError(f"--epochs must be at least 1 (got {epochs})")
    if max_samples is not None and max_samples < 1:
        raise ArgumentError(f"--max-samples must be at least 1 (got {max_samples})")
    if max_connections is not None and max_connections < 1:
        raise ArgumentError(f"--max-connections must be at least 1 (got {max_connections})")
    config = _generate_config({**generate_config, "max_connections": max_connections})
    options = RunOptions(
        config=config,
        limit=parse_limit(limit),
        epochs=epochs,
        max_samples=max_samples,
        log_dir=Path(log_dir or DEFAULT_LOG_DIR),
        fail_on_error=fail_on_error,
        display=display or default_display(),
    )
    resolved_tasks = _resolve_tasks(tasks, task_args or {})
    models = _resolve_models(model, model_args or {}, config)
    logs = []
    try:
        for task in resolved_tasks:
            for each_model in models:
                log = await run_task(task, each_model, options)
                if options.display != "none":
                    print_summary(log)
                logs.append(log)
    finally:
        for each_model in models:
            await each_model.aclose()
    return logs


def _log_path(log_dir: Path, task: str, model: str, eval_id: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    safe_model = model.replace("/", "_").replace(":", "_")
    return log_dir / f"{stamp}_{task}_{safe_model}_{eval_id[:8]}.jsonl"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("evalkit", "torch", "transformers", "openai", "anthropic"):
        if package in sys.modules or package == "evalkit":
            try:
                found[package] = version(package)
            except PackageNotFoundError:
                pass
    return found


def _too_many_errors(errors: int, total: int, fail_on_error: bool | float) -> bool:
    if fail_on_error is True:
        return errors > 0
    if fail_on_error is False:
        return False
    if 0 < fail_on_error < 1:
        return errors >= fail_on_error * total
    return errors >= fail_on_error


class _ScoreBook:
    """Collects scores, reduces each sample's epochs, and computes the metrics at the end."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.scorers = task.scorers
        self.epochs = epochs
        self.reduce = REDUCERS[task.epochs_reducer]
        self.pending: dict[Any, list[dict[str, float]]] = {}
        self.seen: dict[Any, int] = {}
        self.values: dict[str, list[float]] = {s.name: [] for s in self.scorers}

    def add(self, sample_id: Any, scores: dict[str, float] | None) -> None:
        if self.epochs == 1:
            if scores is not None:
                for name, value in scores.items():
                    self.values[name].append(value)
            return
        self.seen[sample_id] = self.seen.get(sample_id, 0) + 1
        if scores is not None:
            self.pending.setdefault(sample_id, []).append(scores)
        if self.seen[sample_id] == self.epochs:
            del self.seen[sample_id]
            self._reduce(self.pending.pop(sample_id, []))

    def _reduce(self, epochs: list[dict[str, float]]) -> None:
        for name in self.values:
            values = [scores[name] for scores in epochs if name in scores]
            if values:
                self.values[name].append(self.reduce(values))

    def results(self) -> dict[str, dict[str, float]]:
        for sample_id in list(self.seen):
            self._reduce(self.pending.pop(sample_id, []))
        self.seen.clear()
        return {s.name: {m.name: m(self.values[s.name]) for m in s.metrics} for s in self.scorers}


def _work(task: Task, limit: tuple[int, int | None], epochs: int) -> tuple[Iterator[tuple[Sample, int]], int]:
    """The (sample, epoch) pairs to run, in dataset order with a sample's epochs together,
    and how many there are."""
    start, stop = limit
    available = len(task.dataset)
    count = max(0, min(available, stop if stop is not None else available) - start)
    samples = itertools.islice(iter(task.dataset), start, stop)
    work = ((sample, epoch) for sample in samples for epoch in range(1, epochs + 1))
    return work, count * epochs


async def run_task(task: Task, model: Model, options: RunOptions) -> EvalLog:
    """Run one task against one model, writing its log line by line."""
    epochs = options.epochs or task.epochs
    config = task.config.merge(options.config)
    work, total = _work(task, options.limit, epochs)
    eval_id = uuid.uuid4().hex
    task_name = task.display_name
    path = _log_path(options.log_dir, task_name, model.name, eval_id)
    header = {
        "format": LOG_FORMAT_VERSION,
        "eval_id": eval_id,
        "task": task_name,
        "model": model.name,
        "model_args": redact(model.model_args),
        "config": config.to_dict(),
        "dataset": {"name": getattr(task.dataset, "name", "dataset"), "fingerprint": task.dataset.fingerprint(), "samples": total // epochs},
        "epochs": epochs,
        "limit": list(options.limit),
        "scorers": [s.name for s in task.scorers],
        "versions": _versions(),
        "started": datetime.now(timezone.utc).isoformat(),
    }
    writer = LogWriter(path)
    writer.header(header)
    book = _ScoreBook(task, epochs)
    usage = ModelUsage()
    errors = 0
    failure: str | None = None
    status = "cancelled"
    started = time.monotonic()
    activity = model.api.activity
    progress = Progress(f"{task_name} · {model.name}", total, options.display)

    async def run_one(sample: Sample, epoch: int) -> EvalSample:
        messages = [message for message in sample.input] if not isinstance(sample.input, str) else None
        state = TaskState(
            model=model.name,
            sample_id=sample.id,  # type: ignore[arg-type]
            epoch=epoch,
            input=sample.input,
            messages=messages if messages is not None else [ChatMessageUser(content=sample.input)],  # type: ignore[arg-type]
            target=sample.targets,
            choices=sample.choices,
            metadata=dict(sample.metadata) if sample.metadata else {},
        )
        sample_usage = ModelUsage()

        async def generate(state: TaskState, **overrides: Any) -> TaskState:
            call_config = config.merge(GenerateConfig(**overrides)) if overrides else config
            output = await model.generate(state.messages, call_config)
            state.output = output
            if output.choices:
                state.messages.append(output.choices[0].message)
            sample_usage.add(output.usage)
            return state

        retries: list[dict[str, Any]] = []
        token = retry_events.set(retries)
        begin = time.monotonic()
        error = None
        scores: dict[str, dict[str, Any]] = {}
        try:
            state = await task.solver(state, generate)  # type: ignore[misc]
            for each in task.scorers:
                scores[each.name] = (await each(state, state.target)).to_dict()
        except Exception as ex:
            error = f"{type(ex).__name__}: {ex}\n{traceback.format_exc(limit=-3)}"
        finally:
            retry_events.reset(token)
        return EvalSample(
            id=sample.id,  # type: ignore[arg-type]
            epoch=epoch,
            input=sample.input_for_log(),
            target=sample.target,
            messages=[message_to_dict(m) for m in state.messages],
            output=_output_dict(state),
            scores=scores,
            usage=sample_usage.to_dict() if sample_usage.total_tokens else None,
            time=round(time.monotonic() - begin, 4),
            error=error,
            retries=retries or None,
        )

    async def worker(cancel: anyio.CancelScope) -> None:
        nonlocal errors, failure
        for sample, epoch in work:
            activity.active += 1
            try:
                result = await run_one(sample, epoch)
            finally:
                activity.active -= 1
            writer.sample(result)
            usage.add(_usage(result.usage))
            book.add(result.id, None if result.error else {k: v["value"] for k, v in result.scores.items()})
            progress.advance(result.usage["total_tokens"] if result.usage else 0, result.error is not None, len(result.retries or ()))
            if result.error is not None:
                errors += 1
                if _too_many_errors(errors, total, options.fail_on_error):
                    failure = f"sample {result.id} (epoch {result.epoch}) failed: {result.error.splitlines()[0]}"
                    cancel.cancel()
                    return

    try:
        with progress:
            async with anyio.create_task_group() as group:
                for _ in range(min(options.max_samples or model.max_connections(config), max(total, 1))):
                    group.start_soon(worker, group.cancel_scope)
        status = "error" if failure else "success"
    except BaseExceptionGroup as group:
        error = _first_leaf(group)
        if isinstance(error, Exception):
            status, failure = "error", f"{type(error).__name__}: {error}"
        raise error from None
    except Exception as error:
        status, failure = "error", f"{type(error).__name__}: {error}"
        raise
    finally:
        done = progress.done
        footer = {
            "status": status,
            "results": book.results(),
            "counts": {"total": total, "completed": done - errors, "errors": errors},
            "usage": {model.name: usage.to_dict()},
            "retries": model.retries,
            "duration": round(time.monotonic() - started, 3),
            "completed": datetime.now(timezone.utc).isoformat(),
        }
        if failure:
            footer["error"] = failure
        writer.footer(footer)
        writer.close()
    return EvalLog(location=path, header=header, footer=footer)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The first exception inside a (possibly nested) exception group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _usage(data: dict[str, int] | None) -> ModelUsage | None:
    return ModelUsage(**data) if data else None


def _output_dict(state: TaskState) -> dict[str, Any] | None:
    output = state.output
    if output is None:
        return None
    data: dict[str, Any] = {"completion": output.completion, "stop_reason": output.stop_reason}
    if len(output.choices) > 1:
        data["choices"] = [c.message.content for c in output.choices[1:]]
    if output.choices and output.choices[0].logprobs:
        data["logprobs"] = [{"token": lp.token, "logprob": lp.logprob} for lp in output.choices[0].logprobs]
    if output.metadata:
        data["metadata"] = output.metadata
    return data
