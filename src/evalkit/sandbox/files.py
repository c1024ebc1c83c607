"""Reading and writing files beneath a folder that sandboxed code can change at the same time:
every path component is opened from its parent's fd without following links, so a link
swapped in between a check and the I/O cannot lead outside; only regular files are read or
written (a FIFO or a device would block or never end), and reads stop past a size limit."""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterator

from evalkit.sandbox.environment import OutputLimitExceededError, size_text

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


def read_beneath(folder: str, file: str, limit: int) -> bytes:
    """The bytes of regular file `file` under `folder`; OutputLimitExceededError past `limit` bytes."""
    with _parent(folder, file, create=False) as (parent, name):
        fd = _open(parent, name, file, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _require_regular(fd, file)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(_CHUNK, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OutputLimitExceededError(size_text(limit), None)
    return b"".join(chunks)


def write_beneath(folder: str, file: str, data: bytes) -> None:
    """Write `data` to `file` under `folder` (missing folders made), replacing a regular file."""
    with _parent(folder, file, create=True) as (parent, name):
        fd = _open(parent, name, file, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK)
    try:
        _require_regular(fd, file)
        if os.fstat(fd).st_nlink > 1:  # a hard link to a file elsewhere
            raise PermissionError(f"{file!r} has other hard links; the sandbox does not write through them")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def relative_parts(folder: str, file: str) -> list[str]:
    """`file` (relative to `folder`, or absolute inside it) as path components; PermissionError
    when it leads outside (`..` or another absolute path)."""
    path = posixpath.normpath(file if posixpath.isabs(file) else posixpath.join(folder, file))
    if path != folder and not path.startswith(folder.rstrip("/") + "/"):
        raise PermissionError(f"{file!r} is outside the sandbox folder")
    return [part for part in path[len(folder):].split("/") if part]


@contextlib.contextmanager
def _parent(folder: str, file: str, create: bool) -> Iterator[tuple[int, str]]:
    """An fd of the folder holding `file` (walked without following links) and the file's name."""
    parts = relative_parts(folder, file)
    if not parts:
        raise IsADirectoryError(f"{file!r} is the sandbox folder")
    fd = os.open(folder, _DIRECTORY)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = _open(fd, part, file, _DIRECTORY)
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _open(parent: int, name: str, file: str, flags: int) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent)
    except OSError as ex:
        if ex.errno in (errno.ELOOP, errno.ENXIO) or (ex.errno == errno.ENOTDIR and _is_link(parent, name)):
            raise PermissionError(f"{file!r} is outside the sandbox folder or not a regular file "
                                  "(links are not followed)") from None
        raise


def _is_link(parent: int, name: str) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    return False


def _require_regular(fd: int, file: str) -> None:
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{file!r} is a folder")
    if not stat.S_ISREG(mode):
        raise PermissionError(f"{file!r} is not a regular file (a FIFO, socket or device is not read or written)")
