"""Runs one task against one model: samples concurrently, each result streamed to the log."""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from evalkit.dataset.sample import Sample
from evalkit.display import DisplayMode, Progress
from evalkit.errors import DatasetError, LogFileError
from evalkit.log.schema import LOG_FORMAT_VERSION, EvalLog, EvalSample
from evalkit.log.writer import LogWriter, redact
from evalkit.model.model import Model, RetryRecorder, retry_recorder
from evalkit.model.types import ChatMessageUser, GenerateConfig, ModelUsage, message_to_dict
from evalkit.scorebook import ScoreBook
from evalkit.secrets import scrub
from evalkit.solver.state import TaskState
from evalkit.task import Task


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


def _log_path(log_dir: Path, task: str, model: str, eval_id: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    safe_model = model.replace("/", "_").replace(":", "_")
    return log_dir / f"{stamp}_{task}_{safe_model}_{eval_id[:8]}.jsonl"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("evalkit", "torch", "transformers", "openai", "anthropic", "aioboto3", "google-genai"):
        if package == "evalkit" or package.replace("-", ".") in sys.modules or package in sys.modules:
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


def _work(task: Task, limit: tuple[int, int | None], epochs: int) -> tuple[Iterator[tuple[Sample, int]], int]:
    """The (sample, epoch) pairs to run, in dataset order with a sample's epochs together,
    and how many there are."""
    start, stop = limit
    available = len(task.dataset)
    count = max(0, min(available, stop if stop is not None else available) - start)
    samples = itertools.islice(iter(task.dataset), start, stop)
    work = ((sample, epoch) for sample in samples for epoch in range(1, epochs + 1))
    return work, count * epochs


def _header(task: Task, model: Model, options: RunOptions, config: GenerateConfig, epochs: int, samples: int) -> dict[str, Any]:
    return {
        "format": LOG_FORMAT_VERSION,
        "eval_id": uuid.uuid4().hex,
        "task": task.display_name,
        "task_origin": task.origin,
        "model": model.name,
        "model_args": redact(model.model_args),
        "config": config.to_dict(),
        "dataset": {"name": getattr(task.dataset, "name", "dataset"), "fingerprint": task.dataset.fingerprint(), "samples": samples},
        "epochs": epochs,
        "limit": list(options.limit),
        "fail_on_error": options.fail_on_error,
        "scorers": [s.name for s in task.scorers],
        "versions": _versions(),
        "started": datetime.now(timezone.utc).isoformat(),
    }


def _compact(log: EvalLog) -> list[EvalSample]:
    """Rewrite `log` with its header and finished samples only (atomically), so a resumed run
    appends each retried sample once; return the finished samples."""
    finished = [s for s in log.samples if s.error is None]
    temporary = log.location.with_name(log.location.name + ".tmp")
    writer = LogWriter(temporary)
    writer.header(log.header)
    for sample in finished:
        writer.sample(sample)
    writer.close()
    os.replace(temporary, log.location)
    return finished


async def run_task(task: Task, model: Model, options: RunOptions, resume: EvalLog | None = None) -> EvalLog:
    """Run one task against one model, writing its log line by line.

    With `resume`, run only the samples that log lacks or that errored there, appending to it.
    """
    epochs = options.epochs or task.epochs
    config = task.config.merge(options.config)
    work, total = _work(task, options.limit, epochs)
    repeated = task.dataset.duplicate_ids()
    if repeated:
        shown = ", ".join(map(str, sorted(set(map(str, repeated)))[:5]))
        raise DatasetError(f"dataset '{getattr(task.dataset, 'name', 'dataset')}' uses sample ids more than once "
                           f"({shown}); give every sample its own id")
    book = ScoreBook(task, epochs)
    usage = ModelUsage()
    finished: list[EvalSample] = []
    if resume is None:
        header = _header(task, model, options, config, epochs, total // epochs)
        path = _log_path(options.log_dir, task.display_name, model.name, header["eval_id"])
    else:
        header, path = resume.header, resume.location
        if header["dataset"]["fingerprint"] != task.dataset.fingerprint():
            raise LogFileError(f"{path}: the task's dataset changed since this log was written; run it afresh with evalkit eval")
        finished = _compact(resume)
        done = {(s.id, s.epoch) for s in finished}
        work = (pair for pair in work if (pair[0].id, pair[1]) not in done)
    writer = LogWriter(path)
    if resume is None:
        writer.header(header)
    for sample in finished:
        book.add(sample.id, {k: v["value"] for k, v in sample.scores.items()})
        usage.add(_usage(sample.usage))
    errors = 0
    failure: str | None = None
    status = "cancelled"
    started = time.monotonic()
    progress = Progress(f"{task.display_name} · {model.name}", total, options.display)
    progress.done = len(finished)

    async def worker(cancel: anyio.CancelScope) -> None:
        nonlocal errors, failure
        for sample, epoch in work:
            model.api.activity.active += 1
            try:
                result = await run_sample(task, model, config, sample, epoch, RetryRecorder(progress.add_retry))
            finally:
                model.api.activity.active -= 1
            writer.sample(result)
            usage.add(_usage(result.usage))
            book.add(result.id, None if result.error else {k: v["value"] for k, v in result.scores.items()})
            progress.advance(result.usage["total_tokens"] if result.usage else 0, result.error is not None)
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
        try:
            results = book.results()
        except Exception as ex:  # a custom scorer or metric gave values it cannot reduce
            results, status = {}, "error"
            failure = failure or f"computing metrics failed: {type(ex).__name__}: {ex}"
        footer = {
            "status": status,
            "results": results,
            "counts": {"total": total, "completed": progress.done - errors, "errors": errors},
            "usage": {model.name: usage.to_dict()},
            "retries": progress.retries,
            "duration": round(time.monotonic() - started, 3),
            "completed": datetime.now(timezone.utc).isoformat(),
        }
        if failure:
            footer["error"] = scrub(failure)
        writer.footer(footer)
        writer.close()
        if status == "cancelled":
            print(f"cancelled: finished samples are in {path}; resume with: evalkit eval-retry {path}", file=sys.stderr)
    return EvalLog(location=path, header=header, footer=footer)


async def run_sample(task: Task, model: Model, config: GenerateConfig, sample: Sample, epoch: int, retries: RetryRecorder) -> EvalSample:
    """Solve and score one (sample, epoch); an exception becomes the record's error."""
    state = TaskState(
        model=model.name,
        sample_id=sample.id,  # type: ignore[arg-type]
        epoch=epoch,
        input=sample.input,
        messages=[ChatMessageUser(content=sample.input)] if isinstance(sample.input, str) else list(sample.input),
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

    token = retry_recorder.set(retries)
    begin = time.monotonic()
    error = None
    scores: dict[str, dict[str, Any]] = {}
    try:
        state = await task.solver(state, generate)  # type: ignore[misc]
        for scorer in task.scorers:
            scores[scorer.name] = (await scorer(state, state.target)).to_dict()
    except Exception as ex:
        error = scrub(f"{type(ex).__name__}: {ex}\n{traceback.format_exc(limit=-3)}")
    finally:
        retry_recorder.reset(token)
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
        retries=retries.events or None,
    )


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
