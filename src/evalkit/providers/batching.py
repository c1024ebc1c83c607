"""Batching for local backends: concurrent `generate` calls become one model call.

Requests queue in the event loop. A batch holds requests of one group (requests that share
generation settings) and starts as soon as it is full, as soon as every sample running
against the model is waiting in the queue (so no more requests can arrive), or at the latest
`max_wait` seconds after its oldest request could have run. Requests queued while every sample
was waiting stay ready: their batches follow at once, whatever their group. Batches run one at
a time in one worker thread, so the event loop never blocks on the model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, TypeVar

from evalkit.model.api import SampleActivity
from evalkit.model.types import GenerateConfig

Request = TypeVar("Request")
Result = TypeVar("Result")

DEFAULT_MAX_WAIT = 0.02
"""Seconds a ready model waits for more requests before running a partial batch."""

RunBatch = Callable[[Any, list[Request]], list[Result]]
"""Runs in the worker thread: (group key, requests) -> one result per request, in order."""


def settings_key(config: GenerateConfig) -> GenerateConfig:
    """The part of `config` that changes what the model generates (requests with equal keys
    can share a batch); connection, retry and rate settings are cleared."""
    return replace(
        config, timeout=None, max_retries=None, max_connections=None, requests_per_sec=None, tokens_per_sec=None
    )


def batch_limit(config: GenerateConfig, default_connections: int, batch_size: int | None) -> int:
    """The most requests one batch may hold: max_connections (the config's, else the
    provider's default), capped by the provider's `batch_size` model arg."""
    limit = config.max_connections or default_connections
    return min(limit, batch_size) if batch_size else limit


@dataclass(eq=False)
class _Queued(Generic[Request, Result]):
    request: Request
    key: Hashable
    length: int
    limit: int
    arrived: float
    future: asyncio.Future[Result] = field(repr=False)
    ready: bool = False
    """Set once every running sample was waiting: nothing else can join its batch."""


class Batcher(Generic[Request, Result]):
    """Groups concurrent requests into batches and runs them with `run` in one worker thread.

    `activity` is the ModelAPI's `SampleActivity` (kept by the runner); with no runner
    (`activity.active == 0`) a batch waits at most `max_wait` for company.
    """

    def __init__(
        self,
        run: RunBatch[Request, Result],
        activity: SampleActivity,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        thread_name: str = "evalkit-model",
    ) -> None:
        self._run = run
        self._activity = activity
        self.max_wait = max_wait
        self._thread_name = thread_name
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[_Queued[Request, Result]] = []
        self._free_since = 0.0
        self._wakeup: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.batches: list[int] = []
        """Sizes of the batches run so far (for tests and benchmarks)."""

    async def submit(self, request: Request, *, key: Hashable, length: int, limit: int) -> Result:
        """Queue `request` and wait for its result.

        `key`: requests with equal keys may share a batch; `length`: its size, used to put
        requests of similar length together; `limit`: the most requests its batch may hold.
        """
        loop = asyncio.get_running_loop()
        item = _Queued(request, key, length, max(1, limit), time.monotonic(), loop.create_future())
        self._queue.append(item)
        self._start_dispatcher(loop)
        try:
            return await item.future
        finally:
            if item in self._queue:  # cancelled before its batch started
                self._queue.remove(item)
                self._wake()

    def _start_dispatcher(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._wakeup = asyncio.Event()
            self._dispatcher = loop.create_task(self._dispatch(), name=f"{self._thread_name}-batcher")
        else:
            self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _dispatch(self) -> None:
        batch: list[_Queued[Request, Result]] = []
        try:
            while self._queue:
                batch = await self._next_batch()
                if batch:
                    await self._execute(batch)
                batch = []
        except BaseException as error:  # cancelled with the event loop: nobody must hang
            for item in batch + self._queue:
                if not item.future.done():
                    stopped = error if isinstance(error, Exception) else RuntimeError("batcher stopped")
                    item.future.set_exception(stopped)
            self._queue.clear()
            raise

    async def _next_batch(self) -> list[_Queued[Request, Result]]:
        """Wait until a batch is ready and take it off the queue (empty if the queue empties)."""
        assert self._wakeup is not None
        while self._queue:
            oldest = self._queue[0]
            group = [item for item in self._queue if item.key == oldest.key]
            deadline = max(oldest.arrived, self._free_since) + self.max_wait
            remaining = deadline - time.monotonic()
            if self._everyone_waiting():
                for item in self._queue:
                    item.ready = True
            if len(group) >= oldest.limit or oldest.ready or remaining <= 0:
                batch = _closest_lengths(group, oldest, oldest.limit)
                for item in batch:
                    self._queue.remove(item)
                return batch
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return []

    def _everyone_waiting(self) -> bool:
        """Whether every sample running against the model has a request queued."""
        active = self._activity.active
        return active > 0 and len(self._queue) >= active

    async def _execute(self, batch: list[_Queued[Request, Result]]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        self.batches.append(len(batch))
        requests = [item.request for item in batch]
        try:
            results = await asyncio.wrap_future(self._executor.submit(self._run, batch[0].key, requests))
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} requests produced {len(results)} results")
        except Exception as error:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
        else:
            for item, result in zip(batch, results):
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._free_since = time.monotonic()

    def close(self) -> None:
        """Stop the worker thread (a later batch starts a new one)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _closest_lengths(
    group: list[_Queued[Request, Result]], oldest: _Queued[Request, Result], limit: int
) -> list[_Queued[Request, Result]]:
    """Up to `limit` requests of `group`, sorted by length: the window of similar lengths that
    includes `oldest` (so no request waits forever) and spans the fewest lengths."""
    ordered = sorted(group, key=lambda item: item.length)
    if len(ordered) <= limit:
        return ordered
    position = ordered.index(oldest)
    first = max(0, position - limit + 1)
    last = min(position, len(ordered) - limit)
    start = min(range(first, last + 1), key=lambda s: ordered[s + limit - 1].length - ordered[s].length)
    return ordered[start : start + limit]
