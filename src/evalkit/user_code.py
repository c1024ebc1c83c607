"""One-line descriptions of exceptions raised by user code (task files, task functions)."""

from __future__ import annotations

import traceback
from pathlib import Path


def describe_failure(error: BaseException, file: str | Path | None) -> str:
    """`NameError: name 'y' is not defined (line 3)`: the error and the deepest line of `file`
    it passed through."""
    message = str(error).splitlines()[0] if str(error) else ""
    described = f"{type(error).__name__}: {message}" if message else type(error).__name__
    line = _line_in(error, Path(file).resolve()) if file else None
    return f"{described} (line {line})" if line else described


def _line_in(error: BaseException, file: Path) -> int | None:
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename).resolve() == file]
    return lines[-1] if lines else None
