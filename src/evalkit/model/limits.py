"""Shared limits: connection pools and rate limiters per connection key, retry backoff."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from dataclasses import dataclass, field

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
    """Everything shared by requests with one connection key in one event loop."""

    pool: anyio.Semaphore
    requests: RateLimiter | None = None
    tokens: RateLimiter | None = None
    size: int = field(default=0)


_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ConnectionLimits]] = weakref.WeakKeyDictionary()


def connection_limits(
    key: str, max_connections: int, requests_per_sec: float | None, tokens_per_sec: float | None
) -> ConnectionLimits:
    """The pool and rate limiters for `key` in the running event loop, created on first use."""
    per_loop = _limits.setdefault(asyncio.get_running_loop(), {})
    limits = per_loop.get(key)
    if limits is None:
        limits = ConnectionLimits(pool=anyio.Semaphore(max_connections), size=max_connections)
        per_loop[key] = limits
    if requests_per_sec and limits.requests is None:
        limits.requests = RateLimiter(requests_per_sec)
    if tokens_per_sec and limits.tokens is None:
        limits.tokens = RateLimiter(tokens_per_sec)
    return limits


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's hint if it gave
    one, else exponential backoff with full jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, BACKOFF_CAP)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
