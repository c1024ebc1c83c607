"""Streams a log as JSON Lines: every line is written whole as soon as it is known, or the
write fails with a `LogWriteError` and the file is left ending on a whole line."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from evalkit.errors import LogWriteError
from evalkit.log.encode import encode
from evalkit.log.schema import EvalSample
from evalkit.secrets import REDACTED, is_known_secret, looks_secret, scrub

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than this system allows (see ulimit -f)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def redact(args: Any, name: str = "") -> Any:
    """A copy of `args` (nested dicts and lists too) with credentials replaced: values under
    names that look like keys, tokens, secrets or passwords, known credential values, and
    credential shapes inside text (Bearer tokens, sk-... keys, passwords in URLs)."""
    if isinstance(args, dict):
        return {str(k): redact(v, str(k)) for k, v in args.items()}  # JSON keys are text
    if isinstance(args, (list, tuple)):
        return [redact(v, name) for v in args]
    if args in (None, "") or isinstance(args, bool):
        return args
    if looks_secret(name) or is_known_secret(args):
        return REDACTED
    return scrub(args) if isinstance(args, str) else args


def write_error(path: Path, error: OSError, *, resumable: bool = False) -> LogWriteError:
    """A one-line `LogWriteError` for an OS error writing `path`: the reason and what to do."""
    reason = _REASONS.get(error.errno or 0) or (error.strerror or str(error)).lower()
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "pass a --log-dir (log_dir=) you can write to"
    else:
        fix = "free some space or pass another --log-dir (log_dir=)"
    if resumable:
        fix += f"; the finished samples are kept: resume with evalkit eval-retry {path}"
    return LogWriteError(f"cannot write the log {path}: {reason}; {fix}")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise LogWriteError(f"cannot create the log folder {folder}: {blocking} is a file, not a folder; "
                            "pass a --log-dir (log_dir=) that is a folder or does not exist yet") from None
    except OSError as ex:
        raise write_error(folder, ex) from None


def _open(path: Path, truncate: bool) -> int:
    _make_folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
    try:
        return os.open(path, flags, 0o644)
    except IsADirectoryError:
        raise LogWriteError(f"cannot write the log {path}: it is a folder; remove it or pass another --log-dir") from None
    except OSError as ex:
        raise write_error(path, ex) from None


class LogWriter:
    """Appends the header, one line per finished sample, and the footer to one file.

    Each line is written whole or not at all: a write the OS cuts short is completed, and a
    write that fails (a full disk) is undone and raises `LogWriteError`, so a later line never
    lands on the same line as a partial one. `truncate=True` starts the file empty.
    """

    def __init__(self, path: Path, *, truncate: bool = False) -> None:
        self.path = path
        self._descriptor = _open(path, truncate)
        self._size = os.lseek(self._descriptor, 0, os.SEEK_END)
        self._damaged: OSError | None = None  # a partial line that could not be undone

    def _write(self, record: dict[str, Any]) -> None:
        line = encode(record)
        if self._damaged is not None:
            raise write_error(self.path, self._damaged, resumable=True)
        written = 0
        try:
            while written < len(line):
                count = os.write(self._descriptor, line[written:])
                if count == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
        except OSError as ex:
            self._undo(written, ex)
            raise write_error(self.path, ex, resumable=self._size > 0) from None
        self._size += written

    def _undo(self, written: int, error: OSError) -> None:
        """Cut off the part of a line that did get written."""
        if written == 0:
            return
        try:
            os.ftruncate(self._descriptor, self._size)
        except OSError:
            self._damaged = error

    def header(self, header: dict[str, Any]) -> None:
        """Append the header (its model arguments already redacted by the caller)."""
        self._write({"header": header})

    def sample(self, sample: EvalSample) -> None:
        """Append one sample. A value the log cannot hold (an object in the scores or metadata)
        raises `LogValueError` naming its field, and nothing is written. The error text is
        masked here, its one way into the log; retry records arrive masked and cut already."""
        record = sample.to_dict()
        if record.get("error"):
            record["error"] = scrub(record["error"])
        self._write(record)

    def batch(self, batch: dict[str, Any], *, durable: bool = True) -> None:
        """Append the record of a provider batch (batch mode) and, when `durable`, sync it at
        once: eval-retry collects that batch instead of paying for its requests again."""
        self._write({"batch": batch})
        if durable:
            self.sync()

    def footer(self, footer: dict[str, Any]) -> None:
        """Append the footer (its error text already masked by the caller, which prints it too)."""
        self._write({"footer": footer})

    def sync(self) -> None:
        """Make what was written durable (fsync); raises `LogWriteError` when it cannot be."""
        try:
            os.fsync(self._descriptor)
        except OSError as ex:
            if ex.errno != errno.EINVAL:  # a device such as a pipe that cannot be synced
                raise write_error(self.path, ex, resumable=True) from None

    def close(self) -> None:
        """fsync and close the file (once); raises `LogWriteError` when the data may not be on disk."""
        if self._descriptor < 0:
            return
        try:
            self.sync()
        finally:
            os.close(self._descriptor)
            self._descriptor = -1
