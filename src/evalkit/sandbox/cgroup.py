"""A pids cgroup per local sandbox, where evalkit may make one (as root, where RLIMIT_NPROC
does not apply): it bounds the sandbox's process count and lists every process it started,
even those that left its session."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from evalkit.sandbox.procs import stop_and_kill

_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


class PidsCgroup:
    """One cgroup with a `pids.max`; the child joins it between fork and exec."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = str(path / "cgroup.procs")

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        """A new cgroup allowing `max_processes` tasks, or None where none can be made."""
        for root in _ROOTS:
            if not (root / "cgroup.procs").exists():
                continue
            path = root / f"evalkit-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(max_processes))
                return cls(path)
            except OSError:
                path.rmdir()
        return None

    def join(self) -> None:
        """Move the calling process into the cgroup (run in the child before exec)."""
        fd = os.open(self.procs_file, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(line) for line in Path(self.procs_file).read_text().split()]
        return []

    def remove(self) -> None:
        """Kill every process in the cgroup, then delete it."""
        stop_and_kill(self.pids)
        with contextlib.suppress(OSError):
            self.path.rmdir()
