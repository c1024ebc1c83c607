"""Which run and sample a batched request belongs to, and its custom_id.

A custom_id is derived from the eval id, the sample id, the epoch, a digest of the request
body and how many times that same body was asked for before in the sample (its retries count
on), so a sample that eval-retry runs again asks for the same custom_ids and finds the replies
of batches recorded in the log. Calls that never reach a batch (a cache hit) do not shift the
ids; a request whose body differs (a changed conversation) gets a new id and is submitted.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections import Counter
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

BatchRecord = dict[str, Any]
"""What the log holds for one created batch: id, provider, model, custom_ids, created."""


@dataclass(eq=False)
class BatchRun:
    """One (task, model) run's part in batch mode: where its batch records go, the batches an
    earlier run of the same log recorded, and the progress display's counter."""

    eval_id: str
    record: Callable[[BatchRecord], None]
    """Appends one batch record to the log (durably) before the batch is polled."""
    recorded: dict[str, tuple[str, str]] = field(default_factory=dict)
    """custom_id -> (batch id, model) from the log being resumed (the latest batch wins)."""
    on_pending: Callable[[int, int], None] | None = None
    """Progress: (change in pending batches, change in requests waiting in them)."""

    def recover(self, record: BatchRecord) -> None:
        """Take a batch record read from the log being resumed."""
        for custom_id in record.get("custom_ids") or ():
            self.recorded[custom_id] = (record["id"], record.get("model", ""))

    def created(self, batch_id: str, provider: str, model: str, custom_ids: list[str]) -> None:
        """Record a batch just created with this run's `custom_ids` in it."""
        self.record({"id": batch_id, "provider": provider, "model": model, "custom_ids": custom_ids,
                     "created": round(time.time(), 3)})

    def pending(self, batches: int, requests: int) -> None:
        """Tell the progress display how many more (or fewer) batches and requests are pending."""
        if self.on_pending is not None:
            self.on_pending(batches, requests)


@dataclass
class SampleRequests:
    """The batched requests one (sample, epoch) has made so far."""

    run: BatchRun
    key: str
    asked: Counter[str] = field(default_factory=Counter)
    """How many times each request body (by digest) was asked for."""


_current: contextvars.ContextVar[SampleRequests | None] = contextvars.ContextVar("evalkit_batch_sample", default=None)


@contextmanager
def batch_sample(run: BatchRun, sample_id: Any, epoch: int) -> Iterator[None]:
    """Within the block, batched requests belong to this (sample, epoch) of `run`."""
    key = _digest(orjson.dumps([run.eval_id, str(sample_id), type(sample_id).__name__, epoch]))[:20]
    token = _current.set(SampleRequests(run, key))
    try:
        yield
    finally:
        _current.reset(token)


def request_id(body: bytes) -> tuple[str, BatchRun | None]:
    """A custom_id for the next batched request of the current sample (a random one outside
    a run), and the run it belongs to; `body` is the request body as canonical JSON. At most
    64 characters of [A-Za-z0-9_-]: `<sample key>-<n>-<body digest>`, n counting the earlier
    requests of the same body in the sample (a retry's n is one more than its failed attempt's)."""
    digest = _digest(body)[:12]
    sample = _current.get()
    if sample is None:
        return f"x{uuid.uuid4().hex[:19]}-0-{digest}", None
    occurrence = sample.asked[digest]
    sample.asked[digest] += 1
    return f"{sample.key}-{occurrence}-{digest}", sample.run


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_batch_run(
    eval_id: str, record: Callable[[BatchRecord], None], on_pending: Callable[[int, int], None],
    recorded: list[BatchRecord],
) -> BatchRun:
    """The run's part in batch mode, with the batches `recorded` by an earlier run of the same
    log. Every run opens one: batch mode may be set on the model's or a solver's config, which
    the task's config does not show, and it costs nothing while no request is batched."""
    run = BatchRun(eval_id, record, on_pending=on_pending)
    for each in recorded:
        run.recover(each)
    return run
