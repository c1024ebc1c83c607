"""SIGTERM handled like Ctrl-C (the CLI end to end is in tests/providers/test_hf.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from evalkit import read_eval_log
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


def test_sigterm_during_python_eval_writes_a_cancelled_footer(tmp_path: Path) -> None:
    script = (
        "from evalkit import Sample, Task, eval\n"
        "from evalkit.scorer import match\n"
        "samples = [Sample(input=f'Q{i} ANSWER: {i}', target=str(i)) for i in range(500)]\n"
        "eval(Task(dataset=samples, scorer=match(), name='t'), model='mockllm/x', model_args={'latency': 0.05},\n"
        "     max_samples=2, log_dir='logs', display='none')\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "logs").glob("*.jsonl")):
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0 and "resume with: evalkit eval-retry" in stderr
    log = read_eval_log(next((tmp_path / "logs").glob("*.jsonl")))
    assert log.status == "cancelled" and 0 < log.footer["counts"]["completed"] < 500
