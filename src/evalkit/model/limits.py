"""Shared limits: connection pools per connection key, rate limiters per endpoint and credential."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal

import anyio

from evalkit.model.adaptive import AUTO, AdaptiveLimit


class RateLimiter:
    """Spaces out requests so that no one-second window holds more than the limit plus one request.

    After a request of `cost` units goes out under a limit of `rate` units a second, the next
    one waits `cost / rate` seconds, counted from the moment the request was actually let
    through, less at most a quarter of that interval of lateness: a busy event loop that
    wakes a request late delays it without bunching later ones up, and small delays do not
    add up to a rate below the limit. Callers queue in arrival order and each passes its own `rate`:
    evals with different limits on one endpoint share one timeline, which never runs faster
    than the highest limit.
    """

    def __init__(self) -> None:
        self._next = 0.0
        self._turn = anyio.Lock()

    async def acquire(self, rate: float, cost: float = 1.0) -> float:
        """Wait for this caller's turn, then take the units `cost` is charged (see `charge`)
        of a `rate` units/s budget; returns them."""
        async with self._turn:
            while (wait := self._next - time.monotonic()) > 0:
                await anyio.sleep(wait)
            charged = self.charge(cost)
            interval = charged / rate
            self._next = max(self._next, time.monotonic() - interval / 4) + interval
        return charged

    def charge(self, cost: float) -> float:
        """The units charged, at the moment it goes out, for a request that costs `cost`."""
        return cost

    def correct(self, rate: float, extra: float) -> None:
        """Account for `extra` more (negative: fewer) units than acquired: the next request
        goes later, or earlier but never at a moment already past."""
        self._next = max(self._next + extra / rate, time.monotonic())


class TokenLimiter(RateLimiter):
    """A `RateLimiter` of tokens, whose real cost is known only from the reply.

    Each request is charged a guess scaled by the ratio of tokens used to tokens guessed so far
    on this endpoint, and corrected when its usage arrives: the limit holds from the first
    replies on, neither starting far below it nor overshooting it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._guessed = 0.0
        self._used = 0.0

    def charge(self, guess: float) -> float:
        """`guess`, a static estimate, scaled by what earlier requests used."""
        return guess * self._used / self._guessed if self._used else guess

    def settle(self, rate: float, guess: float, charged: float, used: float) -> None:
        """Record that a request guessed at `guess` and charged `charged` used `used` tokens."""
        self._guessed += guess
        self._used += used
        self.correct(rate, used - charged)


@dataclass
class EndpointLimits:
    """What requests to one endpoint with one credential share in one event loop."""

    requests: RateLimiter = field(default_factory=RateLimiter)
    tokens: TokenLimiter = field(default_factory=TokenLimiter)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], anyio.Semaphore]] = weakref.WeakKeyDictionary()
_adaptive: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AdaptiveLimit]] = weakref.WeakKeyDictionary()
_endpoints: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, EndpointLimits]] = weakref.WeakKeyDictionary()


def connection_pool(key: str, max_connections: int) -> anyio.Semaphore:
    """The pool of `max_connections` for connection `key` in the running event loop."""
    per_loop = _pools.setdefault(asyncio.get_running_loop(), {})
    pool = per_loop.get((key, max_connections))
    if pool is None:
        pool = per_loop[(key, max_connections)] = anyio.Semaphore(max_connections)
    return pool


def connection_slot(
    key: str, max_connections: int | Literal["auto"], overloaded: Callable[[BaseException], bool]
) -> AbstractAsyncContextManager[object]:
    """One connection of pool `key`: of a fixed `max_connections`, or of the pool's adaptive
    limit when it is "auto" (`overloaded` tells which failures shrink it)."""
    if max_connections == AUTO:
        return adaptive_limit(key).slot(overloaded)
    return connection_pool(key, max_connections)


def adaptive_limit(key: str) -> AdaptiveLimit:
    """The adaptive limit of connection `key` in the running event loop."""
    per_loop = _adaptive.setdefault(asyncio.get_running_loop(), {})
    limit = per_loop.get(key)
    if limit is None:
        limit = per_loop[key] = AdaptiveLimit()
    return limit


def endpoint_limits(key: str) -> EndpointLimits:
    """The rate limiters of endpoint-and-credential `key` in the running event loop, shared by
    every model, eval and limit setting that sends requests there."""
    per_loop = _endpoints.setdefault(asyncio.get_running_loop(), {})
    limits = per_loop.get(key)
    if limits is None:
        limits = per_loop[key] = EndpointLimits()
    return limits
