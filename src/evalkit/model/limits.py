"""Shared limits: connection pools and rate limiters per connection key, retry backoff."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from dataclasses import dataclass

import anyio

DEFAULT_MAX_RETRIES = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0


class RateLimiter:
    """Spaces out acquisitions so no one-second window exceeds `rate` units by more than one.

    Each acquisition of `cost` units reserves `cost / rate` seconds of the timeline; a later
    `correct` call moves the timeline when the real cost is known (tokens used).
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self, cost: float = 1.0) -> None:
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + cost / self.rate
        if start > now:
            await anyio.sleep(start - now)

    def correct(self, extra_cost: float) -> None:
        """Account for `extra_cost` more (or, if negative, fewer) units than acquired."""
        self._next = max(time.monotonic(), self._next + extra_cost / self.rate) if extra_cost > 0 else self._next + extra_cost / self.rate


@dataclass
class ConnectionLimits:
    """Everything shared by requests with one connection key and the same limits in one event loop."""

    pool: anyio.Semaphore
    requests: RateLimiter | None = None
    tokens: RateLimiter | None = None


_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int, float | None, float | None], ConnectionLimits]] = (
    weakref.WeakKeyDictionary()
)


def connection_limits(
    key: str, max_connections: int, requests_per_sec: float | None, tokens_per_sec: float | None
) -> ConnectionLimits:
    """The pool and rate limiters for `key` with these limits in the running event loop,
    created on first use: requests to one endpoint with the same settings share them."""
    per_loop = _limits.setdefault(asyncio.get_running_loop(), {})
    settings = (key, max_connections, requests_per_sec, tokens_per_sec)
    limits = per_loop.get(settings)
    if limits is None:
        limits = ConnectionLimits(
            pool=anyio.Semaphore(max_connections),
            requests=RateLimiter(requests_per_sec) if requests_per_sec else None,
            tokens=RateLimiter(tokens_per_sec) if tokens_per_sec else None,
        )
        per_loop[settings] = limits
    return limits


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's hint if it gave
    one, else exponential backoff with full jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, BACKOFF_CAP)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
