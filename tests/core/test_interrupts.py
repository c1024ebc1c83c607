"""SIGTERM handled like Ctrl-C (the CLI end to end is in tests/providers/test_hf.py)."""

from __future__ import annotations

import os
import signal
import threading
import time

import anyio
import pytest

from evalkit.interrupts import sigterm_as_interrupt


def test_sigterm_raises_keyboard_interrupt_while_active_and_is_restored_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_cancels_a_running_event_loop_as_ctrl_c_does() -> None:
    cleaned_up = []

    async def work() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await anyio.sleep(10)
        finally:
            cleaned_up.append(True)  # cancelled, so `finally` blocks (log footers) run

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            anyio.run(work)
    assert cleaned_up == [True] and time.monotonic() - start < 5


def test_outside_the_main_thread_it_changes_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def other() -> None:
        with sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [before]
