"""Clients whose connections belong to one event loop, rebuilt when used from another.

Each `eval()` call runs its own event loop, so a `Model` reused across calls must not carry an
HTTP client (and its pooled connections) from a loop that has closed.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """The value `factory` makes, once per event loop; `initial`, if given, serves the first loop."""

    def __init__(self, factory: Callable[[], T], initial: T | None = None) -> None:
        self._factory = factory
        self._value = initial
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> T:
        """The value for the running loop, made now if this loop has none."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None or self._value is None:
                self._value = self._factory()
            self._loop = loop
        return self._value  # type: ignore[return-value]

    def take(self) -> T | None:
        """The value made for the running loop, forgetting it (to close it); None if there is none."""
        value, loop = self._value, self._loop
        self._value, self._loop = None, None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        return value if loop is running or loop is None else None
