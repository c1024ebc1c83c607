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

Creating and polling batches run as tasks of their own, so a slow or failing call for one
batch holds up no other. A created batch is given up only on a definite outcome (ended,
failed, or an error a retry cannot fix, such as a 404 on it): while its polls fail
transiently it is polled again later, with backoff.
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
from evalkit.model.batch.protocol import BatchError, BatchProtocol, BatchRequest, BatchRetryError, BatchStatus
from evalkit.model.batch.requests import BatchRun, request_id
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
"""Transient failures of one batch's creation before its requests fail."""


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
    """Polls in a row that failed transiently."""
    polling: bool = False


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
        self._sending: list[_Queued] = []
        """Requests whose batch is being created."""
        self._creating = 0
        """Batches being created."""
        self._tasks: set[asyncio.Task[None]] = set()
        """Running creations and polls."""
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
        while isinstance(reply, Exception):  # an earlier run's attempt failed transiently: on to its retry
            custom_id, run = request_id(encoded)
            reply = await self._recorded(custom_id, run)
        if reply is None:
            reply = await self._send(custom_id, body, len(encoded), run)
        output = self.api.batch_output(reply)  # type: ignore[attr-defined]
        output.time = time.monotonic() - start
        return output

    async def _recorded(self, custom_id: str, run: BatchRun | None) -> dict[str, Any] | Exception | None:
        """What a batch recorded by an earlier run of the log holds for `custom_id`: its reply,
        or its transient failure (a 5xx, an expired batch), after which that run sent a retry
        under the next custom_id, maybe in a batch still running; None when there is nothing
        to collect: not recorded, or the request failed there for good (it is submitted again
        under the same id)."""
        found = run.recorded.pop(custom_id, None) if run is not None else None
        if found is None or found[1] != self.api.model_name:
            return None
        batch_id = found[0]
        if batch_id in self._leftovers:
            reply = self._leftover(batch_id, custom_id)
        else:
            reply = await self._wait_recovered(batch_id, custom_id, run)  # type: ignore[arg-type]
        if isinstance(reply, Exception) and not self._transient(reply):
            return None
        return reply

    def _leftover(self, batch_id: str, custom_id: str) -> dict[str, Any] | Exception:
        leftovers = self._leftovers[batch_id]
        reply = leftovers.pop(custom_id, None)
        if not leftovers:
            del self._leftovers[batch_id]
        return BatchRetryError(f"batch {batch_id} ended without a result for request {custom_id}") if reply is None else reply

    async def _wait_recovered(self, batch_id: str, custom_id: str, run: BatchRun) -> dict[str, Any] | Exception:
        """Wait for `custom_id`'s outcome in a batch an earlier run created (polled from now on)."""
        batch = self._batches.get(batch_id) or self._watch(batch_id)
        future = asyncio.get_running_loop().create_future()
        batch.waiting[custom_id] = future
        run.pending(0 if run in batch.runs else 1, 1)  # shown as pending like a new batch
        batch.runs[run] = batch.runs.get(run, 0) + 1
        try:
            return await future
        except Exception as error:  # the request, or its whole batch, failed there
            return error

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
            while self._queue or self._batches or self._creating:
                self._wakeup.clear()  # type: ignore[union-attr]  # a request arriving from here on wakes the sleep below
                if self._ready():
                    items = self._take()
                    self._creating += 1
                    self._sending.extend(items)
                    self._spawn(self._submit(items))
                    continue
                now = time.monotonic()
                for batch in [b for b in self._batches.values() if b.next_poll <= now and not b.polling]:
                    batch.polling = True
                    self._spawn(self._poll(batch))
                await self._sleep()
        except BaseException as error:  # cancelled with the event loop, or a bug: nobody must hang
            for task in list(self._tasks):
                task.cancel()
            stopped = error if isinstance(error, Exception) else BatchError("batch mode stopped")
            self._fail([item.future for item in self._queue + self._sending], stopped)
            for batch in self._batches.values():
                self._fail(list(batch.waiting.values()), stopped)
            self._queue.clear()
            self._batches.clear()
            if not isinstance(error, Exception):
                raise

    def _spawn(self, work: Any) -> None:
        """Run a creation or poll as a task of its own; the dispatcher wakes when it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._wakeup is not None:
            self._wakeup.set()

    def _may_send(self) -> bool:
        """Whether requests wait and fewer than max_batches batches are in flight."""
        in_flight = self._creating + sum(not b.recovered for b in self._batches.values())
        return bool(self._queue) and in_flight < self.settings.max_batches

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
        waiting = len(self._queue) + len(self._sending) + sum(len(b.waiting) for b in self._batches.values())
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
        wakes = [b.next_poll for b in self._batches.values() if not b.polling]
        if self._may_send():
            wakes.append(self._queue[0].arrived + self.settings.send_delay)
        timeout = max(0.0, min(wakes) - time.monotonic()) if wakes else None
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _submit(self, items: list[_Queued]) -> None:
        """Create one batch of `items` (taken from the queue into `_sending`), record it in each
        run's log, and start polling it."""
        live = [item for item in items if not item.future.done()]
        try:
            batch_id = await self._create([BatchRequest(i.custom_id, i.body) for i in live]) if live else None
        except Exception as error:
            self._fail([item.future for item in live], error)
            return
        finally:
            self._creating -= 1
            sent = set(map(id, items))
            self._sending = [item for item in self._sending if id(item) not in sent]
        if batch_id is None:
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

    async def _create(self, requests: list[BatchRequest]) -> str:
        """The protocol's submit, retried with backoff while it fails transiently (the protocol
        adopts a batch an earlier try created when the API lets it find one)."""
        for attempt in range(MAX_CALL_RETRIES + 1):
            try:
                return await self.protocol.submit(requests)
            except Exception as error:
                if not self._transient(error) or attempt == MAX_CALL_RETRIES:
                    raise
                await asyncio.sleep(backoff_delay(attempt, self.api.retry_after(error)))
        raise AssertionError("unreachable")

    async def _poll(self, batch: _Batch) -> None:
        """Poll one batch; once it ends, hand out its replies. A transient failure (of the poll
        or the download) leaves it to be polled again later."""
        try:
            status = await self.protocol.status(batch.id)
            if status.state == "running":
                self._later(batch, status)
                return
            results = await self.protocol.results(batch.id) if status.state == "ended" else {}
        except Exception as error:
            if self._transient(error):
                self._retry_later(batch, error)
            else:
                self._finish(batch, {}, error)
            return
        finally:
            batch.polling = False
        self._finish(batch, results, None if status.state == "ended" else _failure(batch.id, status))

    def _retry_later(self, batch: _Batch, error: Exception) -> None:
        """After a poll failed transiently: again after the server's Retry-After, else after a
        backoff of at most `tick`."""
        hint = self.api.retry_after(error)
        delay = backoff_delay(batch.failures, hint)
        batch.failures += 1
        batch.next_poll = time.monotonic() + (delay if hint is not None else min(delay, self.settings.tick))

    def _later(self, batch: _Batch, status: BatchStatus) -> None:
        """Poll again soon after progress, later (up to a tick) while the batch makes none."""
        progress = status.completed + status.failed
        tick = self.settings.tick
        batch.delay = min(FIRST_POLL, tick) if progress != batch.completed else min(batch.delay * BACKOFF, tick)
        batch.completed = progress
        batch.failures = 0
        batch.next_poll = time.monotonic() + batch.delay

    def _finish(self, batch: _Batch, results: dict[str, dict[str, Any] | Exception], failure: Exception | None) -> None:
        """Hand each waiting request its reply (or the batch's failure) and forget the batch.
        A recovered batch keeps the results that a resumed sample may still ask for."""
        self._batches.pop(batch.id, None)
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
            self._keep_leftovers(batch, results, failure)
        for run, count in batch.runs.items():
            run.pending(-1, -count)

    def _keep_leftovers(self, batch: _Batch, results: dict[str, dict[str, Any] | Exception], failure: Exception | None) -> None:
        """Keep a recovered batch's outcome for the requests a resumed sample has yet to ask
        for (those still in a run's `recorded`); the other results are dropped."""
        later: dict[str, dict[str, Any] | Exception] = {}
        for run in batch.runs:
            for custom_id, (batch_id, _) in run.recorded.items():
                if batch_id == batch.id:
                    later[custom_id] = failure or results.get(custom_id) or BatchRetryError(
                        f"batch {batch.id} ended without a result for request {custom_id}")
        if later:
            self._leftovers[batch.id] = later

    def _transient(self, error: BaseException) -> bool:
        """Whether `error` is worth a retry (as `Model` decides)."""
        return isinstance(error, TimeoutError) or self.api.is_retryable(error) or self.api.is_rate_limit(error)

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
