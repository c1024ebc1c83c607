"""Runs one task against one model: samples concurrently, each result streamed to the log."""

from __future__ import annotations

import platform
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from evalkit import DISTRIBUTION
from evalkit.dataset.sample import Sample
from evalkit.dataset.selection import resolve_limit, select_samples
from evalkit.display import DisplayMode, Progress
from evalkit.errors import CacheError, DatasetError, EvalkitError, LogValueError, LogWriteError
from evalkit.log.compact import SampleKeys, compact_log
from evalkit.log.schema import LOG_FORMAT_VERSION, EvalLog, EvalSample
from evalkit.log.writer import LogWriter, redact
from evalkit.model.aliases import role_aliases
from evalkit.model.cache import CachePolicy
from evalkit.model.model import Model, RetryRecorder
from evalkit.model.roles import ActiveModels, running
from evalkit.model.types import GenerateConfig, ModelUsage
from evalkit.model.batch.batcher import samples_at_once
from evalkit.model.batch.requests import batch_sample, open_batch_run
from evalkit.run_sample import failed, run_sample
from evalkit.sample_limits import SampleLimits
from evalkit.scorebook import ScoreBook
from evalkit.secrets import scrub
from evalkit.task import Task
from evalkit.task_identity import check_same_task


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every (task, model) run of one `eval()` call."""

    config: GenerateConfig
    limit: tuple[int, int | None] | float
    """A (start, stop) range of samples, or a fraction of each dataset (resolved per task)."""
    epochs: int | None
    max_samples: int | None
    log_dir: Path
    fail_on_error: bool | float
    display: DisplayMode
    roles: dict[str, Model] = field(default_factory=dict)
    """Models by role name (grader, ...), found by `get_model(role=...)`."""
    limits: SampleLimits = SampleLimits()
    """Message and token limits per sample, over the task's own."""
    cache: CachePolicy | None = None
    """The output cache policy of the solvers' generate() calls (None: no cache)."""
    sample_ids: tuple[str, ...] | None = None
    """Run only the samples with these ids (as text), instead of a limit."""
    pair_key: dict[str, Any] | None = None
    """The model's settings as eval-set matches logs on them (`pairs.pair_key`), for the header."""


def _log_path(log_dir: Path, task: str, model: str, eval_id: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    safe_model = model.replace("/", "_").replace(":", "_")
    return log_dir / f"{stamp}_{task}_{safe_model}_{eval_id[:8]}.jsonl"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    try:
        found["evalkit"] = version(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    for package in ("torch", "transformers", "openai", "anthropic", "aioboto3", "google-genai"):
        if package.replace("-", ".") in sys.modules or package in sys.modules:
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


def _work(task: Task, options: RunOptions, epochs: int) -> tuple[Iterator[tuple[Sample, int]], int]:
    """The (sample, epoch) pairs to run, in dataset order with a sample's epochs together,
    and how many there are."""
    samples, count = select_samples(task.dataset, options.limit, options.sample_ids)  # type: ignore[arg-type]
    work = ((sample, epoch) for sample in samples for epoch in range(1, epochs + 1))
    return work, count * epochs


def _header(task: Task, model: Model, options: RunOptions, config: GenerateConfig, epochs: int, samples: int,
            weights: dict[str, str] | None, limits: SampleLimits) -> dict[str, Any]:
    identity = task.identity()
    header = {
        "format": LOG_FORMAT_VERSION,
        "eval_id": uuid.uuid4().hex,
        "task": task.display_name,
        "task_origin": task.origin,
        "model": model.name,
        "model_args": redact(model.model_args),
        **({"model_alias": model.alias} if model.alias else {}),
        "model_roles": {role: each.name for role, each in options.roles.items()},
        **role_aliases(options.roles),
        "config": config.to_dict(),
        "dataset": {"name": getattr(task.dataset, "name", "dataset"), "fingerprint": identity["dataset"], "samples": samples},
        "epochs": epochs,
        "limit": list(options.limit),
        "fail_on_error": options.fail_on_error,
        "sample_limits": {"messages": limits.messages, "tokens": limits.tokens},
        "sandbox": task.sandbox.to_dict() if task.sandbox else None,  # type: ignore[union-attr]
        "solver": identity["solver"],
        "scorers": identity["scorers"],
        "identity": identity,
        "versions": _versions(),
        "started": datetime.now(timezone.utc).isoformat(),
    }
    if weights:
        header["weights"] = weights
    if options.cache is not None:
        header["cache"] = options.cache.to_dict()
    if options.sample_ids:
        header["sample_ids"] = list(options.sample_ids)
    if options.pair_key is not None:
        header["pair_key"] = options.pair_key
    return header


async def _weights(model: Model) -> dict[str, str] | None:
    """What answers, for the header; hashing local weights (once, then cached) runs in a
    thread, and a failure only leaves the header without it."""
    try:
        return await anyio.to_thread.run_sync(model.api.weights)
    except Exception as error:
        print(f"warning: could not hash the weights of {model.name}: {type(error).__name__}: {error}", file=sys.stderr)
        return None


NO_METADATA: dict[str, Any] = {}
"""Shared by every sample without metadata, so the score book keeps no empty dict per sample."""


@dataclass
class _Tally:
    """What the footer counts, carried over from an earlier run of the same log on resume."""

    errors: int = 0
    retries: int = 0
    limited: int = 0
    """Samples whose solvers a message or token limit ended."""
    cache_hits: int = 0
    """Model calls the output cache answered."""
    duration: float = 0.0
    failure: str | None = None
    traceback: str | None = None
    retryable: bool = True
    """False when the failure is the run's settings (no samples selected, a bad argument): a retry would fail again."""


def _resume(task: Task, resume: EvalLog, work: Iterator[tuple[Sample, int]], keep: Callable[[EvalSample], None],
            keep_batch: Callable[[dict[str, Any]], None]) -> tuple[int, Iterator[tuple[Sample, int]], _Tally]:
    """Compact the log, passing each finished sample to `keep` (and each batch record to
    `keep_batch`) as it streams by; return how many finished, the work still to do, and the
    retries and time spent so far."""
    check_same_task(resume.header, task.identity(), resume.location)
    before = resume.footer or {}
    tally = _Tally(retries=int(before.get("retries", 0)), duration=float(before.get("duration", 0.0)))
    done = SampleKeys()

    def finished(sample: EvalSample) -> None:
        keep(sample)
        done.add(sample.id, sample.epoch)
        tally.limited += sample.limit is not None
        tally.cache_hits += sample.cache_hits or 0

    count = compact_log(resume, finished, keep_batch)
    return count, (pair for pair in work if (pair[0].id, pair[1]) not in done), tally


def check_ids(task: Task) -> None:
    """Refuse a dataset whose sample ids repeat (results and resume are keyed by them)."""
    repeated = task.dataset.duplicate_ids()
    if repeated:
        shown = ", ".join(map(str, sorted(set(map(str, repeated)))[:5]))
        raise DatasetError(f"dataset '{getattr(task.dataset, 'name', 'dataset')}' uses sample ids more than once "
                           f"({shown}); give every sample its own id")


def _no_samples(task: Task, options: RunOptions) -> str:
    start, stop = options.limit
    size = len(task.dataset)
    if size == 0:
        return f"the dataset of task '{task.display_name}' is empty: no samples to evaluate"
    if options.sample_ids:
        return f"--sample-id {','.join(options.sample_ids)} selects no samples of task '{task.display_name}'"
    return f"--limit {start + 1}-{stop} selects no samples: the dataset of task '{task.display_name}' has {size}"


async def run_task(task: Task, model: Model, options: RunOptions, resume: EvalLog | None = None) -> EvalLog:
    """Run one task (whose ids `check_ids` accepted) against one model, writing its log line by line.

    With `resume`, run only the samples that log lacks or that errored there, appending to it.
    """
    epochs = options.epochs or task.epoch_count
    config = task.config.merge(options.config)
    limits = SampleLimits(options.limits.messages or task.message_limit, options.limits.tokens or task.token_limit)
    options = replace(options, limit=resolve_limit(options.limit, len(task.dataset)))  # the header records the range
    work, total = _work(task, options, epochs)
    book = ScoreBook(task, epochs)
    active = ActiveModels(model, options.roles)
    finished = 0
    tally = _Tally()
    recorded: list[dict[str, Any]] = []

    def keep(sample: EvalSample) -> None:
        book.add(sample.id, sample.metadata or NO_METADATA, sample.scores)
        active.add_usage(model.name, _usage(sample.usage))

    if resume is None:
        header = _header(task, model, options, config, epochs, total // epochs, await _weights(model), limits)
        path = _log_path(options.log_dir, task.display_name, model.name, header["eval_id"])
    else:
        header, path = resume.header, resume.location
        finished, work, tally = _resume(task, resume, work, keep, recorded.append)
    writer = LogWriter(path)
    if resume is None:
        writer.header(header)
    if total == 0:
        tally.failure, tally.retryable = _no_samples(task, options), False
        print(f"warning: {tally.failure}", file=sys.stderr)
    status = "cancelled"
    started = time.monotonic()
    progress = Progress(f"{task.display_name} · {model.name}", total, options.display, already_done=finished)
    batches = open_batch_run(header["eval_id"], writer.batch, progress.add_batches, recorded)

    async def worker(cancel: anyio.CancelScope) -> None:
        for sample, epoch in work:
            model.api.activity.active += 1
            try:
                with batch_sample(batches, sample.id, epoch):
                    result = await run_sample(task, model, config, sample, epoch,
                                              RetryRecorder(progress.add_retry, progress.add_waiting), limits, options.cache)
            finally:
                model.api.activity.active -= 1
            result, fatal = _record(result, book, writer)
            progress.advance(result.usage["total_tokens"] if result.usage else 0, result.error is not None)
            tally.errors += result.error is not None
            tally.retries += len(result.retries or ())
            tally.limited += result.limit is not None
            tally.cache_hits += result.cache_hits or 0
            if fatal or (result.error is not None and _too_many_errors(tally.errors, total, options.fail_on_error)):
                tally.failure = fatal or f"sample {result.id} (epoch {result.epoch}) failed: {result.error.splitlines()[0]}"  # type: ignore[union-attr]
                cancel.cancel()
                return

    try:
        with progress, running(active):
            async with anyio.create_task_group() as group:
                batch = model.config.merge(config).batch
                at_once = options.max_samples or samples_at_once(model.api, batch) or model.max_connections(config)
                for _ in range(min(at_once, max(total, 1))):
                    group.start_soon(worker, group.cancel_scope)
        status = "success"
    except BaseException as raised:
        error = first_leaf(raised) if isinstance(raised, BaseExceptionGroup) else raised
        if not isinstance(error, Exception) or isinstance(error, LogWriteError):
            raise error from None  # cancelled, interrupted, or the log itself cannot be written
        status, tally.failure = "error", f"{type(error).__name__}: {error}"
        tally.retryable = not isinstance(error, EvalkitError) or isinstance(error, CacheError)
        if not isinstance(error, EvalkitError):
            tally.traceback = scrub("".join(traceback.format_exception(error)))
    finally:
        footer = _footer(status, book, tally, total, finished + progress.done, active, started)
        writer.footer(footer)
        writer.close()
        if footer["status"] == "cancelled":
            print(f"cancelled: finished samples are in {path}; resume with: evalkit eval-retry {path}", file=sys.stderr)
    return EvalLog(location=path, header=header, footer=footer)


def _record(result: EvalSample, book: ScoreBook, writer: LogWriter) -> tuple[EvalSample, str | None]:
    """Check, write and count one finished sample; return it as written, and why the run
    must stop, if it must.

    A sample whose scores its metrics or reducers cannot use becomes an error; when it is the
    first scored sample, every later one would fail the same way, so the run stops.
    """
    fatal = None
    if result.error is None:
        problem = book.problem(result.id, result.metadata or NO_METADATA, result.scores)
        if problem is not None:
            scorer_name, fatal = problem
            result.error = fatal
            del result.scores[scorer_name]  # the other scorers' scores stay in the log line
            if book.scored:
                fatal = None
    try:
        writer.sample(result)
    except LogValueError as ex:
        result = failed(result, f"LogValueError: {ex}")
        writer.sample(result)
    book.add(result.id, result.metadata or NO_METADATA, None if result.error else result.scores)
    return result, fatal


def _footer(status: str, book: ScoreBook, tally: _Tally, total: int, done: int, active: ActiveModels, started: float) -> dict[str, Any]:
    failure = tally.failure
    results = book.results()
    if book.metric_failures:
        failure = failure or book.metric_failures[0]
    if book.unreduced:
        failure = failure or f"{len(book.unreduced)} samples could not be reduced across epochs: {book.unreduced[0]}"
    if status == "success" and (failure or (done and tally.errors >= done)):
        status = "error"
        failure = failure or f"every sample failed ({tally.errors} of {done})"
    counts = {"total": total, "completed": done - tally.errors, "errors": tally.errors}
    if tally.limited:
        counts["limited"] = tally.limited
    if tally.cache_hits:
        counts["cache_hits"] = tally.cache_hits
    if book.unreduced:
        counts["unreduced"] = len(book.unreduced)  # samples, where the others count (sample, epoch) pairs
    footer = {
        "status": status,
        "results": results,
        "counts": counts,
        "usage": active.usage_by_model(),
        "retries": tally.retries,
        "duration": round(tally.duration + time.monotonic() - started, 3),
        "completed": datetime.now(timezone.utc).isoformat(),
    }
    if failure:
        footer["error"] = scrub(failure)
    if not tally.retryable:
        footer["retryable"] = False
    if tally.traceback:
        footer["traceback"] = tally.traceback
    return footer


def first_leaf(group: BaseException) -> BaseException:
    """The first exception inside a (possibly nested) exception group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _usage(data: dict[str, int] | None) -> ModelUsage | None:
    return ModelUsage(**data) if data else None
