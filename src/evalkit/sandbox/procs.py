"""Finding a sandbox's processes in /proc (by a marker in their environment, or by a session
whose leader is still the one the sandbox started) and killing them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable


def _stat(pid: int | str) -> list[bytes]:
    """The fields of /proc/PID/stat after the command name (state is [0], session [3], start time [19])."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks after boot), None when it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(_stat(pid)[19])
    return None


def processes_of(sessions: dict[int, int | None], marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (NAME=VALUE), or that run in one of
    `sessions` (leader pid: its start time) and hold no other sandbox's marker. A session whose
    leader pid now belongs to a process started at another time is someone else's (a reused
    pid; while any member of the old session lived the pid could not have been reused)."""
    if not os.path.isdir("/proc"):
        return []
    wanted = marker.encode()
    name = wanted.split(b"=")[0] + b"="
    ours = {leader for leader, started in sessions.items() if start_time(leader) in (None, started)}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat(pid)
            if fields[0] in (b"Z", b"X"):
                continue
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environment = handle.read().split(b"\0")
            if wanted in environment or (int(fields[3]) in ours and not any(v.startswith(name) for v in environment)):
                found.append(int(pid))
    return found


def stop_and_kill(pids: Callable[[], list[int]], seconds: float = 10) -> None:
    """SIGSTOP then SIGKILL everything `pids()` lists, until it lists none (or `seconds` pass):
    all are stopped first, so none forks a replacement while the others are killed."""
    deadline = time.monotonic() + seconds
    while (left := pids()) and time.monotonic() < deadline:
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        time.sleep(0.01)
