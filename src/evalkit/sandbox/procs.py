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
    """Live processes whose environment holds `marker` (NAME=VALUE), or that run in one of
    `sessions` and hold no other sandbox's marker (a session id may be a reused pid)."""
    if not os.path.isdir("/proc"):
        return []
    wanted = marker.encode()
    name = wanted.split(b"=")[0] + b"="
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            session = _session_of(pid)
            if session is None:
                continue
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environment = handle.read().split(b"\0")
            if wanted in environment or (session in sessions and not any(v.startswith(name) for v in environment)):
                found.append(int(pid))
    return found
