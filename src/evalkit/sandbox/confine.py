"""What the local sandbox applies to each child before it runs the command: resource limits
(CPU seconds, address space, processes, file size), no way back to the capabilities that
would lift them, and, where the kernel has Landlock, writes confined to the sandbox folder
(optionally no TCP, and no signals to processes outside the sandbox)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

# x86_64 and aarch64 share these syscall numbers.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP = 4, 38, 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522

_WRITE_FILE, _TRUNCATE = 1 << 1, 1 << 14
# Every right that changes the file system: write (bit 1), remove dir and file (4, 5), make
# char, dir, reg, sock, fifo, block, sym (6-12); REFER (13) from ABI 2, TRUNCATE from ABI 3.
_FS_WRITE_BY_ABI = {1: sum(1 << bit for bit in (1, *range(4, 13))), 2: 1 << 13, 3: _TRUNCATE}
_NET_TCP = 0b11  # bind and connect (ABI 4)
_SCOPE_ALL = 0b11  # abstract unix sockets and signals outside the domain (ABI 6)
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty")


@dataclass(frozen=True)
class Limits:
    """Per-command limits: seconds of CPU, bytes of address space, processes (beyond those the
    user already runs), bytes per file written, whether TCP is allowed, and the niceness added
    (so that busy commands leave the CPU to the eval that runs them)."""

    cpu_seconds: int
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    network: bool
    nice: int


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, 0, _RULESET_VERSION)
    except (AttributeError, OSError):
        return 0
    return max(int(version), 0)


def _fs_write_rights(abi: int) -> int:
    return sum(bits for version, bits in _FS_WRITE_BY_ABI.items() if version <= abi)


def _ruleset(folder: str, network: bool) -> int | None:
    """A Landlock ruleset fd allowing writes only under `folder` (and to a few devices)."""
    abi = landlock_abi()
    if abi < 1:
        return None
    fs_rights = _fs_write_rights(abi)
    net_rights = _NET_TCP if abi >= 4 and not network else 0
    scoped = _SCOPE_ALL if abi >= 6 else 0
    attr = struct.pack("QQQ", fs_rights, net_rights, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = _libc().syscall(_CREATE_RULESET, attr, size, 0)
    if fd < 0:
        return None
    _allow(fd, folder, fs_rights)
    file_rights = _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
    for device in _WRITABLE_DEVICES:
        with contextlib.suppress(OSError):
            _allow(fd, device, file_rights)
    return int(fd)


def _allow(ruleset: int, path: str, rights: int) -> None:
    parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = struct.pack("=Qi", rights, parent)
        if _libc().syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock rule for {path}")
    finally:
        os.close(parent)


@cache
def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 63


@cache
def hide_parent() -> None:
    """Make this (the eval) process non-dumpable, so its children cannot read its
    /proc/PID/environ (API keys) or memory, even as the same user."""
    if sys.platform == "linux":
        _libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _drop_capabilities(libc: ctypes.CDLL, last: int) -> None:
    """Drop every capability: bounding, ambient, inheritable, permitted and effective sets, so
    that root code cannot lift limits, read other root processes' /proc, mknod or chattr."""
    for capability in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("Ii", _CAPABILITY_VERSION_3, 0)
    libc.capset(header, bytes(24))


def tasks_of_user() -> int:
    """How many processes and threads this user runs now (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    if not os.path.isdir("/proc"):
        return 256  # a guess where /proc is missing
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                task = os.stat(f"/proc/{name}/task")
                if task.st_uid == uid:
                    count += max(task.st_nlink - 2, 1)
    return count


@contextlib.contextmanager
def confinement(folder: str, limits: Limits, user_tasks: int,
                join: Callable[[], None] | None = None) -> Iterator[Callable[[], None]]:
    """The function a child runs between fork and exec (`preexec_fn`), valid inside the block;
    it calls `join` first (to enter the sandbox's cgroup). The process limit counts on top of
    `user_tasks` (what `tasks_of_user()` found)."""
    ruleset = _ruleset(folder, limits.network)
    processes = user_tasks + limits.max_processes
    libc = _libc()
    last = _last_capability()

    def confine() -> None:
        if join is not None:
            join()
        os.nice(limits.nice)
        for kind, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                            (resource.RLIMIT_NPROC, processes), (resource.RLIMIT_FSIZE, limits.max_file_bytes),
                            (resource.RLIMIT_CORE, 0)):
            hard = resource.getrlimit(kind)[1]
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))
        _drop_capabilities(libc, last)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if ruleset is not None and libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            os._exit(126)

    try:
        yield confine
    finally:
        if ruleset is not None:
            os.close(ruleset)
