"""The `local` sandbox: a temporary folder per sample and a confined child process per command.

Process isolation, not a security boundary: commands run as the evaluating user, on the
same machine, reading what that user can read.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import stat
import sys
import tempfile
import uuid
import warnings
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio

from evalkit.sandbox.cgroup import PidsCgroup
from evalkit.sandbox.confine import Limits, confinement, hide_parent, tasks_of_user
from evalkit.sandbox.environment import (
    ExecResult,
    SandboxEnvironment,
    SandboxEnvironmentLimits,
    config_from,
)
from evalkit.sandbox.files import read_beneath, write_beneath
from evalkit.sandbox.process import run_process
from evalkit.sandbox.procs import processes_of, start_time, stop_and_kill

_MARKER = "EVALKIT_SANDBOX"
_PASSED_ON = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class LocalSandboxConfig:
    """Limits of every command: address space (MiB), CPU seconds, processes it may add, size of
    any file it writes (MiB), TCP allowed (`network=False` needs Landlock ABI 4), commands run
    at once across all local sandboxes (default: the CPU count), and the niceness added to them."""

    memory_mb: int = 1024
    cpu_seconds: int = 60
    max_processes: int = 128
    max_file_mb: int = 256
    network: bool = True
    max_subprocesses: int = 0
    nice: int = 0


_live: weakref.WeakSet[LocalSandboxEnvironment] = weakref.WeakSet()
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


class LocalSandboxEnvironment(SandboxEnvironment):
    """A fresh temporary folder; each `exec` a child process confined to it."""

    def __init__(self, folder: Path, config: LocalSandboxConfig, cgroup: PidsCgroup | None = None) -> None:
        self.folder = folder
        self.cgroup = cgroup
        self.config = config
        self.marker = uuid.uuid4().hex
        self.sessions: dict[int, int | None] = {}  # session leader pid: its start time
        self.limits = Limits(config.cpu_seconds, config.memory_mb * _MIB, config.max_processes,
                             config.max_file_mb * _MIB, config.network, config.nice)

    @classmethod
    def parse_config(cls, config: Any) -> LocalSandboxConfig:
        return config_from(LocalSandboxConfig, config, "local")

    @classmethod
    async def create(cls, config: LocalSandboxConfig | None) -> LocalSandboxEnvironment:
        config = config or LocalSandboxConfig()
        hide_parent()
        # RLIMIT_NPROC does not bind root: there, a pids cgroup bounds the processes (where one can be made).
        cgroup = PidsCgroup.create(config.max_processes) if os.geteuid() == 0 else None
        if os.geteuid() == 0 and cgroup is None:
            _warn_no_process_limit()
        try:
            folder = Path(tempfile.mkdtemp(prefix="evalkit-sandbox-")).resolve()
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        created = cls(folder, config, cgroup)
        _live.add(created)
        return created

    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: int | None = None,
    ) -> ExecResult:
        workdir = self.resolve(cwd) if cwd else self.folder
        if not workdir.is_dir():
            raise NotADirectoryError(f"cwd {cwd!r} is not a folder in the sandbox")
        # RLIMIT_NPROC counts the user's processes: counted off the loop, and only where it binds (not root).
        user_tasks = 0 if os.geteuid() == 0 else await anyio.to_thread.run_sync(tasks_of_user)
        async with _limiter(self.config.max_subprocesses):
            join = self.cgroup.join if self.cgroup else None
            with confinement(str(self.folder), self.limits, user_tasks, join) as confine:
                return await run_process(
                    cmd, input=input, cwd=str(workdir), env=self._environment(env), timeout=timeout,
                    output_limit=SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE, preexec_fn=confine,
                    on_start=self._started,
                )

    async def read_file(self, file: str, text: bool = True) -> Any:
        data = await anyio.to_thread.run_sync(
            read_beneath, str(self.folder), file, SandboxEnvironmentLimits.MAX_READ_FILE_SIZE)
        return data.decode("utf-8") if text else data

    async def write_file(self, file: str, contents: str | bytes) -> None:
        data = contents.encode() if isinstance(contents, str) else contents
        await anyio.to_thread.run_sync(write_beneath, str(self.folder), file, data)

    async def cleanup(self) -> None:
        await anyio.to_thread.run_sync(self.remove)

    def remove(self) -> None:
        """Kill every process the sandbox started (those that left its sessions too) and delete the folder."""
        if self.cgroup is not None:
            self.cgroup.remove()  # every process, however it left the session (the scan below is then quick)
        stop_and_kill(lambda: processes_of(self.sessions, f"{_MARKER}={self.marker}"))
        _remove_tree(self.folder)
        _live.discard(self)  # last: an interrupted removal is retried at exit

    def _started(self, pid: int) -> None:
        self.sessions[pid] = start_time(pid)

    def resolve(self, file: str) -> Path:
        """`file` (relative to the folder, or absolute) as a path inside the folder; anything
        that leads outside it, through `..` or a link, raises PermissionError."""
        path = (self.folder / file).resolve()
        if path != self.folder and not path.is_relative_to(self.folder):
            raise PermissionError(f"{file!r} is outside the sandbox folder")
        return path

    def _environment(self, extra: dict[str, str] | None) -> dict[str, str]:
        """A small environment: nothing of the parent's beyond PATH and locale (no credentials), then
        `extra`, then the sandbox's marker."""
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
        base = {"PATH": path, "HOME": str(self.folder), "TMPDIR": str(self.folder), "LANG": "C.UTF-8",
                "PYTHONNOUSERSITE": "1"}
        base.update({name: os.environ[name] for name in _PASSED_ON if name in os.environ})
        # `env` may change any of these (as in Inspect) but not the marker clean-up finds processes by.
        return {**base, **(extra or {}), _MARKER: self.marker}


def _limiter(size: int) -> asyncio.Semaphore:
    """The running loop's bound of `size` commands at once (0: the CPU count), made on first use."""
    by_size = _limiters.setdefault(asyncio.get_running_loop(), {})
    if size not in by_size:
        by_size[size] = asyncio.Semaphore(size or os.cpu_count() or 1)
    return by_size[size]


@cache
def _warn_no_process_limit() -> None:
    warnings.warn("the local sandbox runs as root without a pids cgroup (none could be made under /sys/fs/cgroup): "
                  "nothing bounds the number of processes sandboxed code starts", UserWarning, stacklevel=3)


def _remove_tree(folder: Path) -> None:
    """Delete the folder, whatever permissions the command left on what is inside."""

    def unlock(function: Any, path: str, _: Any) -> None:
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, stat.S_IRWXU)
        function(path)

    if folder.exists():
        shutil.rmtree(folder, onerror=unlock)


@atexit.register
def _remove_leftovers() -> None:
    """Sandboxes a crash or a hard exit left behind."""
    for sandbox in list(_live):
        sandbox.remove()
