"""Batch mode: concurrent generate() calls for one model become provider batches.

Requests queue in the event loop. A batch is sent when it is full (`size` requests or
`max_size_mb` of bodies), when every sample running against the model is waiting on a batch
(no more requests can come), or `send_delay` seconds after its oldest request arrived; at
most `max_batches` are in flight. Each batch is polled with backoff: after a second, then
each time 1.5 times later while it makes no progress, at most `tick` seconds apart. When it ends, each reply goes back to the
request with its custom_id, and is parsed as the provider parses a direct reply.

Each batch is recorded in the log of every run with a request in it as soon as it is
created (`BatchRun.created`), so eval-retry after a crash collects the replies of those
batches (a request whose custom_id the log records waits on that batch) instead of paying
for them again.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import orjson

from evalkit.errors import BatchUnsupportedError
from evalkit.model.api import ModelAPI
from evalkit.model.retry import backoff_delay
from evalkit.model.types import BatchConfig, ChatMessage, GenerateConfig, ModelOutput
from evalkit.providers.batch.protocol import BatchError, BatchProtocol, BatchRequest, BatchRetryError, BatchStatus
from evalkit.providers.batch.requests import BatchRun, request_id
from evalkit.tool.types import ToolChoice, ToolInfo

DEFAULT_SIZE = 100
DEFAULT_SEND_DELAY = 15.0
DEFAULT_TICK = 15.0
DEFAULT_MAX_BATCHES = 100
FIRST_POLL = 1.0
"""Seconds before a batch's first poll (and after each poll that saw progress), at most `tick`."""
BACKOFF = 1.5
"""Factor by which a batch's poll interval grows, up to `tick`, while it makes no progress."""
MAX_CALL_RETRIES = 8
"""Transient failures of one submit/status/results call before its requests fail."""


@dataclass(frozen=True)
class BatchSettings:
    """BatchConfig with every default filled in."""

    size: int
    send_delay: float
    tick: float
    max_batches: int
    max_bytes: int | None

    @classmethod
    def of(cls, batch: bool | int | BatchConfig, protocol: BatchProtocol) -> BatchSettings:
        config = batch if isinstance(batch, BatchConfig) else BatchConfig(size=None if isinstance(batch, bool) else batch)
        size = min(config.size or DEFAULT_SIZE, protocol.max_requests)
        limit = getattr(protocol, "max_bytes", None)
        wanted = int(config.max_size_mb * 1_000_000) if config.max_size_mb else None
        max_bytes = min(filter(None, (wanted, limit)), default=None)
        return cls(size, DEFAULT_SEND_DELAY if config.send_delay is None else config.send_delay,
                   config.tick or DEFAULT_TICK, config.max_batches or DEFAULT_MAX_BATCHES, max_bytes)


@dataclass(eq=False)
class _Queued:
    custom_id: str
    body: dict[str, Any]
    size: int
    run: BatchRun | None
    future: asyncio.Future[dict[str, Any]] = field(repr=False)
    arrived: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Batch:
    id: str
    waiting: dict[str, asyncio.Future[dict[str, Any]]]
    """custom_id -> the future of the request waiting for it (recovered batches: filled as requests ask)."""
    runs: dict[BatchRun, int] = field(default_factory=dict)
    """Each run with requests in this batch and how many, for the progress display."""
    recovered: bool = False
    delay: float = 0.0
    next_poll: float = 0.0
    completed: int = -1
    failures: int = 0


class Batcher:
    """Collects one model's requests into batches of its provider's batch API."""

    def __init__(self, api: ModelAPI, protocol: BatchProtocol, settings: BatchSettings) -> None:
        self.api = api
        self.protocol = protocol
        self.settings = settings
        self._queue: list[_Queued] = []
        self._batches: dict[str, _Batch] = {}
        self._leftovers: dict[str, dict[str, dict[str, Any] | Exception]] = {}
        """Results of recovered batches not yet asked for, by batch id."""
        self._wakeup: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        """One request through a batch: its reply parsed as the provider parses a direct one."""
        body = self.api.batch_body(input, tools, tool_choice, config)  # type: ignore[attr-defined]
        if inspect.isawaitable(body):
            body = await body
        start = time.monotonic()
        encoded = orjson.dumps(body, default=str, option=orjson.OPT_SORT_KEYS)
        custom_id, run = request_id(encoded)
        reply = await self._recorded(custom_id, run)
        if reply is None:
            reply = await self._send(custom_id, body, len(encoded), run)
        output = self.api.batch_output(reply)  # type: ignore[attr-defined]
        output.time = time.monotonic() - start
        return output

    async def _recorded(self, custom_id: str, run: BatchRun | None) -> dict[str, Any] | None:
        """The reply a batch recorded by an earlier run of the log holds for `custom_id`, or
        None when there is none to collect (not recorded, or that request failed)."""
        found = run.recorded.pop(custom_id, None) if run is not None else None
        if found is None or found[1] != self.api.model_name:
            return None
        batch_id = found[0]
        if batch_id in self._leftovers:
            leftovers = self._leftovers[batch_id]
            reply = leftovers.pop(custom_id, None)
            if not leftovers:
                del self._leftovers[batch_id]
            return reply if isinstance(reply, dict) else None
        batch = self._batches.get(batch_id) or self._watch(batch_id)
        future = asyncio.get_running_loop().create_future()
        batch.waiting[custom_id] = future
        run.pending(0 if run in batch.runs else 1, 1)  # type: ignore[union-attr]  # shown as pending like a new batch
        batch.runs[run] = batch.runs.get(run, 0) + 1  # type: ignore[index]
        try:
            return await future
        except Exception:  # the request, or its whole batch, failed there: send it again
            return None

    def _watch(self, batch_id: str) -> _Batch:
        batch = self._batches[batch_id] = _Batch(batch_id, {}, recovered=True)
        self._start()
        return batch

    async def _send(self, custom_id: str, body: dict[str, Any], size: int, run: BatchRun | None) -> dict[str, Any]:
        item = _Queued(custom_id, body, size, run, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._start()
        try:
            return await item.future
        finally:
            if item in self._queue:  # cancelled before its batch was sent
                self._queue.remove(item)

    def _start(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._wakeup = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name="evalkit-batches")
        else:
            self._wakeup.set()  # type: ignore[union-attr]

    async def _dispatch(self) -> None:
        try:
            while self._queue or self._batches:
                self._wakeup.clear()  # type: ignore[union-attr]  # a request arriving from here on wakes the sleep below
                if self._ready():
                    await self._submit(self._take())
                    continue
                now = time.monotonic()
                for batch in [b for b in self._batches.values() if b.next_poll <= now]:
                    await self._poll(batch)
                await self._sleep()
        except BaseException as error:  # cancelled with the event loop, or a bug: nobody must hang
            stopped = error if isinstance(error, Exception) else BatchError("batch mode stopped")
            self._fail([item.future for item in self._queue], stopped)
            for batch in self._batches.values():
                self._fail(list(batch.waiting.values()), stopped)
            self._queue.clear()
            self._batches.clear()
            if not isinstance(error, Exception):
                raise

    def _may_send(self) -> bool:
        """Whether requests wait and fewer than max_batches batches are in flight."""
        return bool(self._queue) and sum(not b.recovered for b in self._batches.values()) < self.settings.max_batches

    def _ready(self) -> bool:
        """Whether a batch should be sent now."""
        if not self._may_send():
            return False
        full = len(self._queue) >= self.settings.size or (
            self.settings.max_bytes is not None and sum(item.size for item in self._queue) >= self.settings.max_bytes)
        late = time.monotonic() - self._queue[0].arrived >= self.settings.send_delay
        return full or late or self._everyone_waiting()

    def _everyone_waiting(self) -> bool:
        """Whether every sample running against the model waits on a batch (no request can come)."""
        active = self.api.activity.active
        waiting = len(self._queue) + sum(len(b.waiting) for b in self._batches.values())
        return active > 0 and waiting >= active

    def _take(self) -> list[_Queued]:
        taken, size = [], 0
        for item in self._queue:
            if len(taken) == self.settings.size or (taken and self.settings.max_bytes and size + item.size > self.settings.max_bytes):
                break
            taken.append(item)
            size += item.size
        del self._queue[:len(taken)]
        return taken

    async def _sleep(self) -> None:
        """Wait for a new request, the next poll, or the oldest request's send_delay."""
        assert self._wakeup is not None
        wakes = [b.next_poll for b in self._batches.values()]
        if self._may_send():
            wakes.append(self._queue[0].arrived + self.settings.send_delay)
        timeout = max(0.0, min(wakes) - time.monotonic()) if wakes else None
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _submit(self, items: list[_Queued]) -> None:
        """Create one batch of `items`, record it in each run's log, and start polling it."""
        live = [item for item in items if not item.future.done()]
        if not live:
            return
        try:
            batch_id = await self._call(self.protocol.submit, [BatchRequest(i.custom_id, i.body) for i in live])
        except Exception as error:
            self._fail([item.future for item in live], error)
            return
        first = min(FIRST_POLL, self.settings.tick)
        batch = _Batch(batch_id, {item.custom_id: item.future for item in live}, delay=first, next_poll=time.monotonic() + first)
        self._batches[batch_id] = batch
        for run, ids in _by_run(live).items():
            try:
                run.created(batch_id, self.api.provider, self.api.model_name, ids)
            except Exception as error:  # that run's log cannot be written: its requests fail with why
                self._fail([batch.waiting.pop(custom_id) for custom_id in ids], error)
                continue
            batch.runs[run] = len(ids)
            run.pending(1, len(ids))

    async def _poll(self, batch: _Batch) -> None:
        try:
            status = await self._call(self.protocol.status, batch.id)
            if status.state == "running":
                self._later(batch, status)
                return
            results = await self._call(self.protocol.results, batch.id) if status.state == "ended" else {}
        except Exception as error:
            self._finish(batch, {}, error)
            return
        self._finish(batch, results, None if status.state == "ended" else _failure(batch.id, status))

    def _later(self, batch: _Batch, status: BatchStatus) -> None:
        """Poll again soon after progress, later (up to a tick) while the batch makes none."""
        progress = status.completed + status.failed
        tick = self.settings.tick
        batch.delay = min(FIRST_POLL, tick) if progress != batch.completed else min(batch.delay * BACKOFF, tick)
        batch.completed = progress
        batch.next_poll = time.monotonic() + batch.delay

    def _finish(self, batch: _Batch, results: dict[str, dict[str, Any] | Exception], failure: Exception | None) -> None:
        """Hand each waiting request its reply (or the batch's failure) and forget the batch."""
        del self._batches[batch.id]
        for custom_id, future in batch.waiting.items():
            reply = results.pop(custom_id, None) if failure is None else failure
            if future.done():
                continue
            if reply is None:
                reply = BatchRetryError(f"batch {batch.id} ended without a result for request {custom_id}")
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if batch.recovered:
            self._leftovers[batch.id] = results
        for run, count in batch.runs.items():
            run.pending(-1, -count)

    async def _call(self, method: Any, argument: Any) -> Any:
        """One protocol call, retried with backoff while it fails transiently."""
        for attempt in range(MAX_CALL_RETRIES + 1):
            try:
                return await method(argument)
            except Exception as error:
                transient = self.api.is_retryable(error) or self.api.is_rate_limit(error)
                if not transient or attempt == MAX_CALL_RETRIES:
                    raise
                await asyncio.sleep(backoff_delay(attempt, self.api.retry_after(error)))

    @staticmethod
    def _fail(futures: list[asyncio.Future[Any]], error: BaseException) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(error)


def _by_run(items: list[_Queued]) -> dict[BatchRun, list[str]]:
    runs: dict[BatchRun, list[str]] = {}
    for item in items:
        if item.run is not None:
            runs.setdefault(item.run, []).append(item.custom_id)
    return runs


def _failure(batch_id: str, status: BatchStatus) -> BatchError:
    reason = status.error or "no reason given"
    if status.retryable:
        return BatchRetryError(f"batch {batch_id} did not complete ({reason}); its requests are sent again")
    return BatchError(f"batch {batch_id} failed: {reason}")


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[ModelAPI, dict[BatchSettings, Batcher]]] = (
    weakref.WeakKeyDictionary())


def batcher_for(api: ModelAPI, batch: bool | int | BatchConfig) -> Batcher | None:
    """The batcher of `api` in this event loop for these settings, or None (with a warning,
    once) when its provider has no batch API."""
    try:
        protocol = api.batch_protocol()
    except BatchUnsupportedError:
        protocol = None
    if protocol is None:
        _warn_unsupported(api.provider or type(api).__name__)
        return None
    settings = BatchSettings.of(batch, protocol)
    per_api = _batchers.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary()).setdefault(api, {})
    if settings not in per_api:
        per_api[settings] = Batcher(api, protocol, settings)
    return per_api[settings]


def samples_at_once(api: ModelAPI, batch: bool | int | BatchConfig | None) -> int | None:
    """How many samples run at once by default in batch mode: enough to fill `max_batches`
    batches (None when batch mode is off or the provider has no batch API)."""
    if not batch:
        return None
    try:
        protocol = api.batch_protocol()
    except BatchUnsupportedError:
        return None
    if protocol is None:
        return None
    settings = BatchSettings.of(batch, protocol)
    return settings.size * settings.max_batches


_warned: set[str] = set()


def _warn_unsupported(provider: str) -> None:
    """Warn once per process that `provider` ignores batch mode (as Inspect ignores it)."""
    if provider not in _warned:
        _warned.add(provider)
        warnings.warn(f"provider '{provider}' has no batch API: batch mode is ignored and its requests are sent one by one",
                      UserWarning, stacklevel=3)
