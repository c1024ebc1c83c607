"""Batching for local backends: concurrent `generate` calls become one model call.

Requests queue in the event loop. A batch holds requests of one group (requests that share
generation settings) and starts as soon as it is full, as soon as every sample running
against the model is waiting in the queue (so no more requests can arrive), or at the latest
`max_wait` seconds after its oldest request could have run. Requests queued while every sample
was waiting stay ready: their batches follow at once, whatever their group. Batches run one at
a time in one worker thread, so the event loop never blocks on the model.

A batch that raises is run again one request at a time, so one bad prompt fails only its own
request. A request whose caller stops waiting (Ctrl-C, a timeout) is marked in the batch's
`Cancellation`, which the model polls between decoding steps to stop generating for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, TypeVar

from evalkit.model.adaptive import AUTO
from evalkit.model.api import SampleActivity
from evalkit.model.types import GenerateConfig

Request = TypeVar("Request")
Result = TypeVar("Result")

DEFAULT_MAX_WAIT = 0.02
"""Seconds a ready model waits for more requests before running a partial batch."""



class Cancellation:
    """Which requests of a running batch nobody waits for any more. The batcher marks them
    from the event loop; the model polls `rows` or `everything` in the worker thread."""

    def __init__(self, size: int) -> None:
        self.rows = [False] * size
        self.everything = False
        """Whether every request of the batch was abandoned (the batch may stop at once)."""

    def cancel(self, row: int) -> None:
        """Mark request `row` of the batch as abandoned."""
        self.rows[row] = True
        self.everything = all(self.rows)


RunBatch = Callable[[Any, list[Request], Cancellation], list[Result]]
"""Runs in the worker thread: (group key, requests, their cancellation) -> one result per
request, in order. It should stop early for the rows `Cancellation` marks."""


def settings_key(config: GenerateConfig) -> GenerateConfig:
    """The part of `config` that changes what the model generates (requests with equal keys
    can share a batch); connection, retry and rate settings are cleared."""
    return replace(
        config, timeout=None, attempt_timeout=None, max_retries=None, max_connections=None, requests_per_sec=None,
        tokens_per_sec=None,
    )


def batch_limit(config: GenerateConfig, default_connections: int, batch_size: int | None) -> int:
    """The most requests one batch may hold: max_connections (the config's, else the
    provider's default), capped by the provider's `batch_size` model arg."""
    limit = default_connections if config.max_connections == AUTO else config.max_connections or default_connections
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
    running: tuple[Cancellation, int] | None = None
    """While its batch runs: the batch's cancellation and this request's row in it."""

    def abandon(self) -> None:
        """Tell the running batch that nobody waits for this request any more."""
        if self.running is not None:
            cancellation, row = self.running
            cancellation.cancel(row)


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
            elif item.future.cancelled():  # cancelled while its batch runs
                item.abandon()

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
        self.batches.append(len(batch))
        try:
            results = await self._run_in_thread(batch)
        except Exception as error:
            if len(batch) == 1:
                _fail(batch[0], error)
            else:  # find the request that broke the batch: run each one alone
                for item in batch:
                    await self._execute_alone(item)
        else:
            for item, result in zip(batch, results):
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._free_since = time.monotonic()

    async def _execute_alone(self, item: _Queued[Request, Result]) -> None:
        if item.future.done():  # its caller stopped waiting
            return
        try:
            (result,) = await self._run_in_thread([item])
        except Exception as error:
            _fail(item, error)
        else:
            if not item.future.done():
                item.future.set_result(result)

    async def _run_in_thread(self, batch: list[_Queued[Request, Result]]) -> list[Result]:
        """Run `batch` in the worker thread; each request can cancel its row meanwhile."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        cancellation = Cancellation(len(batch))
        for row, item in enumerate(batch):
            item.running = (cancellation, row)
        work = self._executor.submit(self._run, batch[0].key, [item.request for item in batch], cancellation)
        try:
            results = await asyncio.wrap_future(work)
        except BaseException:
            if not work.done():  # the event loop is going away: nobody will take the results
                for row in range(len(batch)):
                    cancellation.cancel(row)
            raise
        finally:
            for item in batch:
                item.running = None
        if len(results) != len(batch):
            raise RuntimeError(f"batch of {len(batch)} requests produced {len(results)} results")
        return results

    def close(self) -> None:
        """Stop the worker thread (a later batch starts a new one)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _fail(item: _Queued[Request, Result], error: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(error)


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
