"""Adaptive concurrency (`max_connections="auto"`): an AIMD limit on one connection pool.

The limit starts at `START`, grows while requests succeed and shrinks by `BACKOFF` when one
is refused for overload (a rate limit, a timeout, another transient error). It grows by one
per success until the first overload (slow start: about doubling each round trip), then by
about one per round trip (one divided by the limit per success). It grows only while the pool
is full, so a run with few samples in flight does not inflate it, and it shrinks at most once
per window: failures of requests let through before the last decrease were sent under the old
limit and are not counted again. Refused requests are retried as usual by `Model.generate`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

AUTO = "auto"
START = 8
CEILING = 256
BACKOFF = 0.9
"""Factor applied on overload; mild, because running over a server's cap costs a retry while
running under it costs throughput."""


class AdaptiveLimit:
    """The concurrency limit of one connection pool, adjusted from its requests' outcomes."""

    def __init__(self, start: int = START, ceiling: int = CEILING) -> None:
        self.limit = float(start)
        self.ceiling = ceiling
        self.in_flight = 0
        self.peak = start
        self.slow_start = True
        self._window = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def current(self) -> int:
        """Requests allowed at once now."""
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self, overloaded: Callable[[BaseException], bool]) -> AsyncIterator[None]:
        """Hold one of the `current` connections for a request; its outcome (an exception for
        which `overloaded` is true, or success) adjusts the limit."""
        await self._acquire()
        window, full = self._window, self.in_flight >= self.current
        try:
            yield
        except BaseException as error:
            if isinstance(error, Exception) and overloaded(error):
                self._decrease(window)
            raise
        else:
            if full:
                self._increase()
        finally:
            self.in_flight -= 1
            self._wake()

    async def _acquire(self) -> None:
        """Take a connection, queueing in arrival order while all are in use."""
        if self.in_flight < self.current and not self._waiters:
            self.in_flight += 1
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():  # a connection was handed over just as the wait was cancelled
                self.in_flight -= 1
                self._wake()
            else:
                self._waiters.remove(turn)
            raise

    def _wake(self) -> None:
        """Hand free connections to the longest waiting requests."""
        while self._waiters and self.in_flight < self.current:
            self.in_flight += 1
            self._waiters.popleft().set()

    def _increase(self) -> None:
        step = 1.0 if self.slow_start else 1.0 / self.limit
        self.limit = min(float(self.ceiling), self.limit + step)
        self.peak = max(self.peak, self.current)
        self._wake()

    def _decrease(self, window: int) -> None:
        if window != self._window:
            return
        self.slow_start = False
        self._window += 1
        self.limit = max(1.0, self.limit * BACKOFF)


def pool_size(max_connections: int | str | None, default: int) -> int:
    """The most connections a pool may open: `CEILING` for "auto", else `max_connections`, else `default`."""
    if max_connections == AUTO:
        return CEILING
    return int(max_connections or default)
