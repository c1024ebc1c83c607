"""SIGTERM handled like Ctrl-C, so a terminated eval ends as cleanly as an interrupted one."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM does what SIGINT (Ctrl-C) does: the running eval is cancelled, its
    log gets a "cancelled" footer and can be resumed, and KeyboardInterrupt reaches the caller.

    Signal handlers belong to the main thread: elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _as_sigint(signum: int, frame: FrameType | None) -> None:
    """Run SIGINT's current handler (the event loop's, which cancels the running eval), else
    raise KeyboardInterrupt as Python's default SIGINT handler does."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt
