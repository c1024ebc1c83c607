"""Finds the logs named by a mix of files and folders."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from evalkit.errors import LogFileError

LOG_SUFFIX = ".jsonl"


def log_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The log files named by `paths`: files as given, folders searched (recursively) for
    `*.jsonl`, sorted by name (which starts with the time the run started)."""
    given = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: list[Path] = []
    for each in map(Path, given):
        if each.is_dir():
            found.extend(sorted(p for p in each.rglob(f"*{LOG_SUFFIX}") if p.is_file()))
        elif each.is_file():
            found.append(each)
        else:
            raise LogFileError(f"no log file or folder at {each}; pass a log file or a --log-dir that exists")
    return found
