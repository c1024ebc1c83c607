"""`eval_set()`: run every (task, model) pair until each has a complete log in one log dir.

Rerunning it is safe: a pair whose log is complete is reused, an unfinished one (started,
cancelled, error, or with errored samples) is resumed in the same file, a missing one starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from evalkit.dataset.selection import same_selection
from evalkit.errors import ArgumentError, LogFileError
from evalkit.log.reader import read_eval_log
from evalkit.log.schema import EvalLog
from evalkit.model.model import Model
from evalkit.pairs import current_plan
from evalkit.run_task import RunOptions
from evalkit.runner import TaskSpec, eval_async, run_sync
from evalkit.task import Task
from evalkit.task_identity import check_same_task, identity_changes

MAX_RETRY_WAIT = 3600.0
"""No wait between attempts is longer than an hour."""


def is_complete(log: EvalLog) -> bool:
    """Finished with success and no errored sample."""
    return log.status == "success" and not (log.footer or {}).get("counts", {}).get("errors")


def is_retryable(log: EvalLog) -> bool:
    """Unfinished for a reason a retry may fix (not, e.g., a selection of no samples)."""
    return (log.footer or {}).get("retryable", True) is not False


class LogDirPlan:
    """The log of each (task, model) pair found in a log dir.

    A log belongs to a pair when its task name, samples and epochs match, it was made with the
    same model settings (`pairs.pair_key`: model as given, generate config, model args, roles)
    and written by the same task (the identity check of eval-retry); a log that matches all but
    the task's identity is refused, as eval-retry refuses it. Logs of other tasks, models or
    settings are left alone. Where a pair has several logs, the newest counts.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.found: dict[tuple[int, int], EvalLog] = {}
        self.settled: set[Path] = set()
        """Unfinished logs that a retry cannot complete: reported, not run again."""
        self.reused = 0
        """Pairs of the last eval whose complete log was reused."""

    def prepare(self, tasks: list[Task], keys: list[dict[str, Any]], options: RunOptions) -> None:
        self.found = {}
        self.reused = 0
        logs = sorted(_readable_logs(self.log_dir), key=lambda log: str(log.header.get("started", "")))
        for t, task in enumerate(tasks):
            epochs = options.epochs or task.epoch_count
            identity = task.identity()
            for n, key in enumerate(keys):
                matching = [log for log in logs if log.task == task.display_name and log.header.get("pair_key") == key
                            and same_selection(log.header, options.limit, options.sample_ids, len(task.dataset))
                            and log.header.get("epochs") == epochs]
                same = [log for log in matching if _same_task(log, identity)]
                if same:
                    self.found[t, n] = same[-1]
                elif matching:
                    self._refuse_changed(matching[-1], identity)

    def _refuse_changed(self, log: EvalLog, identity: dict[str, Any]) -> None:
        try:
            check_same_task(log.header, identity, log.location)
        except LogFileError as ex:
            seed = ""
            if identity_changes(log.header.get("identity") or {}, identity) == ["the dataset"]:
                seed = ("; if the dataset is shuffled, give it a seed (shuffle without seed= puts the samples in a "
                        "new order on every run, so eval-set never finds its logs again)")
            raise LogFileError(f"{ex}, or move the log out of {self.log_dir} so eval-set starts that run afresh{seed}") from None

    def complete(self, t: int, n: int) -> EvalLog | None:
        log = self.found.get((t, n))
        if log is None or not (is_complete(log) or log.location in self.settled):
            return None
        self.reused += 1
        return log

    def resume(self, t: int, n: int) -> EvalLog | None:
        log = self.found.get((t, n))
        return log if log is not None and not is_complete(log) else None


def _same_task(log: EvalLog, identity: dict[str, Any]) -> bool:
    """Whether `log` was written by the task whose identity is `identity` (two tasks of one set
    may share a name: each finds its own log)."""
    try:
        check_same_task(log.header, identity, log.location)
    except LogFileError:
        return False
    return True


def _readable_logs(log_dir: Path) -> list[EvalLog]:
    """The headers (and footers) of the logs in `log_dir`; a file that is not an evalkit log is
    skipped with a warning."""
    logs = []
    for path in sorted(log_dir.glob("*.jsonl")) if log_dir.is_dir() else []:
        try:
            logs.append(read_eval_log(path, header_only=True))
        except LogFileError as ex:
            print(f"warning: eval-set skips {path}: {ex}", file=sys.stderr)
    return logs


def eval_set(
    tasks: TaskSpec | Sequence[TaskSpec],
    log_dir: str | Path,
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    retry_attempts: int = 10,
    retry_wait: float = 30,
    **eval_args: Any,
) -> tuple[bool, list[EvalLog]]:
    """Evaluate each task against each model until every pair has a complete log in `log_dir`.

    Complete logs there are reused, unfinished ones resumed, missing ones started; failed work
    is retried up to `retry_attempts` times, waiting `retry_wait` seconds, doubled each time
    (at most an hour). Returns whether every pair is complete, and one log per pair. Other
    arguments are those of `eval()`. Calling it again when everything is done runs nothing.
    """
    return run_sync(lambda: eval_set_async(tasks, log_dir, model, retry_attempts=retry_attempts,
                                           retry_wait=retry_wait, **eval_args))


async def eval_set_async(
    tasks: TaskSpec | Sequence[TaskSpec],
    log_dir: str | Path,
    model: str | Model | Sequence[str | Model] | None = None,
    *,
    retry_attempts: int = 10,
    retry_wait: float = 30,
    **eval_args: Any,
) -> tuple[bool, list[EvalLog]]:
    """`eval_set()` for code that already runs an event loop."""
    if isinstance(retry_attempts, bool) or not isinstance(retry_attempts, int) or retry_attempts < 0:
        raise ArgumentError(f"--retry-attempts must be a whole number of at least 0 (got {retry_attempts!r})")
    if not retry_wait >= 0:
        raise ArgumentError(f"--retry-wait must be at least 0 seconds (got {retry_wait!r})")
    plan = LogDirPlan(Path(log_dir))
    token = current_plan.set(plan)
    try:
        for attempt in range(retry_attempts + 1):
            logs = await eval_async(tasks, model, log_dir=log_dir, **eval_args)
            unfinished = [log for log in logs if not is_complete(log)]
            if plan.reused == len(logs) and not unfinished and eval_args.get("display") != "none":
                print(f"eval-set: all {len(logs)} runs already have a complete log in {log_dir}; nothing to do", file=sys.stderr)
            if not unfinished:
                return True, logs
            _report_settled(plan, unfinished)
            if all(log.location in plan.settled for log in unfinished):
                return False, logs
            if attempt < retry_attempts:
                wait = min(retry_wait * 2**attempt, MAX_RETRY_WAIT)
                print(f"eval-set: {len(unfinished)} of {len(logs)} runs unfinished; retry {attempt + 1} of "
                      f"{retry_attempts} in {wait:g} s", file=sys.stderr)
                await anyio.sleep(wait)
    finally:
        current_plan.reset(token)
    return False, logs


def _report_settled(plan: LogDirPlan, unfinished: list[EvalLog]) -> None:
    """Report, once each, the runs a retry cannot complete, and keep them out of later attempts."""
    for log in unfinished:
        if not is_retryable(log) and log.location not in plan.settled:
            plan.settled.add(log.location)
            print(f"eval-set: {log.task} · {log.model} failed in a way a retry cannot fix: {(log.footer or {}).get('error')}; "
                  f"fix it and run eval-set again ({log.location})", file=sys.stderr)
