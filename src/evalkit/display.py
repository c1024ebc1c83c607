"""Progress while an eval runs: a rich bar on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, Literal, TextIO

DisplayMode = Literal["rich", "plain", "none"]

PLAIN_EVERY_SECONDS = 5.0
UPDATE_EVERY_SECONDS = 0.1


def default_display() -> DisplayMode:
    """rich on a terminal, plain lines otherwise."""
    return "rich" if sys.stderr.isatty() else "plain"


class Progress:
    """Counts finished samples, errors, retries and tokens for one (task, model) run."""

    def __init__(self, title: str, total: int, mode: DisplayMode, stream: TextIO = sys.stderr, already_done: int = 0) -> None:
        self.title = title
        self.total = total
        self.mode = mode
        self.stream = stream
        self.already_done = already_done
        """Samples finished by an earlier run of a resumed log: shown, but not in the rate."""
        self.done = 0
        self.errors = 0
        self.retries = 0
        self.waiting = 0
        """Samples waiting out a server's rate limit right now."""
        self.batches = 0
        self.batched = 0
        """Provider batches in flight (batch mode) and the requests waiting in them."""
        self.tokens = 0
        self.started = time.monotonic()
        self._last_shown = self.started - PLAIN_EVERY_SECONDS  # the first change shows at once
        self._bar: Any = None
        self._bar_task: Any = None

    def __enter__(self) -> Progress:
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} samples/s  {task.fields[tokens]:,} tokens  {task.fields[extra]}"),
                TimeElapsedColumn(),
                console=_console(self.stream),
                transient=False,
            )
            self._bar.start()
            self._bar_task = self._bar.add_task(self.title, total=self.total, rate=0.0, tokens=0, extra="")
        elif self.mode == "plain":
            print(f"{self.title}: {self.total} samples", file=self.stream, flush=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.show(force=True)
        if self._bar is not None:
            self._bar.stop()

    def advance(self, tokens: int, error: bool) -> None:
        self.done += 1
        self.tokens += tokens
        self.errors += error
        self.show()

    def add_retry(self) -> None:
        self.retries += 1
        self.show()

    def add_waiting(self, change: int) -> None:
        """Count `change` (+1 or -1) samples as waiting on a server's rate limit."""
        self.waiting += change
        self.show()

    def add_batches(self, batches: int, requests: int) -> None:
        """Count `batches` more (or fewer) provider batches in flight, holding `requests` requests."""
        self.batches += batches
        self.batched += requests
        self.show()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _extra(self) -> str:
        parts = []
        if self.errors:
            parts.append(f"{self.errors} errors")
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.waiting:
            parts.append(f"{self.waiting} waiting on rate limit")
        if self.batches:
            parts.append(f"{self.batches} batch{'es' if self.batches > 1 else ''} pending ({self.batched} requests)")
        return ", ".join(parts)

    def show(self, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        every = UPDATE_EVERY_SECONDS if self._bar is not None else PLAIN_EVERY_SECONDS
        if not force and now - self._last_shown < every:
            return
        self._last_shown = now
        if self._bar is not None:
            self._bar.update(self._bar_task, completed=self.already_done + self.done, rate=self.rate, tokens=self.tokens, extra=self._extra())
        else:
            extra = self._extra()
            print(
                f"{self.title}: {self.already_done + self.done}/{self.total} samples, {self.rate:.1f} samples/s, "
                f"{self.tokens:,} tokens{', ' + extra if extra else ''}",
                file=self.stream,
                flush=True,
            )


def _console(stream: TextIO) -> Any:
    from rich.console import Console

    return Console(file=stream)


def print_summary(log: Any, stream: TextIO = sys.stderr) -> None:
    """One block per finished eval: task, model, status, metrics and where the log is."""
    footer = log.footer or {}
    counts = footer.get("counts", {})
    lines = [f"{log.task} · {log.model} · {log.status} · {counts.get('completed', 0)}/{counts.get('total', 0)} samples"
             + (f", {counts['errors']} errors" if counts.get("errors") else "")
             + (f", {counts['limited']} ended by a message or token limit" if counts.get("limited") else "")
             + (f", {counts['cache_hits']} model calls from the cache" if counts.get("cache_hits") else "")]
    for scorer_name, metrics in log.results.items():
        lines.append(f"  {scorer_name}: {format_metrics(metrics, 3)}")
    if log.error:
        lines.append(f"  error: {log.error}")
    lines.append(f"  log: {log.location}")
    print("\n".join(lines), file=stream, flush=True)


def format_metrics(metrics: dict[str, Any], digits: int) -> str:
    """`accuracy 0.750  stderr 0.112`; a metric with no value (no scored sample) shows as -,
    and a metric with several values (`grouped`) as `accuracy (maths 0.500, all 0.750)`."""
    return "  ".join(f"{name} {_format_value(value, digits)}" for name, value in metrics.items())


def _format_value(value: Any, digits: int) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{key} {_format_value(v, digits)}" for key, v in value.items()) + ")"
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)
