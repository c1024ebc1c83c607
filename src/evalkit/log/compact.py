"""Rewrites a log before a resume, so each retried sample ends up in it exactly once."""

from __future__ import annotations

import os
from pathlib import Path

from evalkit.log.schema import EvalLog, EvalSample
from evalkit.log.writer import LogWriter, write_error


def compact_log(log: EvalLog) -> list[EvalSample]:
    """Replace `log`'s file with its header and its finished (error-free) samples, and return
    those samples. The new file is written to `<log>.tmp` (emptied first: a stale one from an
    earlier crash is never appended to), synced, renamed over the log, and the folder synced,
    so a crash at any moment leaves either the old log or the new one whole."""
    finished = [sample for sample in log.samples if sample.error is None]
    temporary = log.location.with_name(log.location.name + ".tmp")
    try:
        _write(temporary, log, finished)
        os.replace(temporary, log.location)
    except OSError as ex:
        temporary.unlink(missing_ok=True)
        raise write_error(log.location, ex) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(log.location.parent)
    return finished


def _write(path: Path, log: EvalLog, samples: list[EvalSample]) -> None:
    writer = LogWriter(path, truncate=True)
    try:
        writer.header(log.header)
        for sample in samples:
            writer.sample(sample)
    finally:
        writer.close()


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as ex:
        raise write_error(folder, ex) from None
    finally:
        os.close(descriptor)
