"""Finding a sandbox's processes in /proc: by session, or by a marker in their environment."""

from __future__ import annotations

import contextlib
import os


def _session_of(pid: str) -> int | None:
    """The session id of a live (not zombie) process, else None."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        rest = handle.read().rsplit(b")", 1)[1].split()
    state, session = rest[0], int(rest[3])
    return None if state in (b"Z", b"X") else session


def processes_of(sessions: set[int], marker: str) -> list[int]:
    """Live processes in one of `sessions` or whose environment holds `marker` (NAME=VALUE)."""
    if not os.path.isdir("/proc"):
        return []
    wanted = marker.encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            session = _session_of(pid)
            if session is None:
                continue
            if session in sessions:
                found.append(int(pid))
                continue
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    found.append(int(pid))
    return found
