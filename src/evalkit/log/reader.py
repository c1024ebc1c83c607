"""Reads a log back, tolerating a last line cut short by a killed process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import LogFileError
from evalkit.log.schema import EvalLog, EvalSample


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise LogFileError(f"log file not found: {path}")
    with path.open("rb") as file:
        lines = file.readlines()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if number == len(lines) and not raw.endswith(b"\n"):
                return  # the process was killed while writing this line
            raise LogFileError(f"{path}, line {number}: not valid JSON; is this an evalkit log?") from None
        if not isinstance(record, dict):
            raise LogFileError(f"{path}, line {number}: expected a JSON object; is this an evalkit log?")
        yield number, record


def read_eval_log(path: str | Path) -> EvalLog:
    """Read a whole log. A log with no footer (killed or still running) has status "started"."""
    path = Path(path)
    records = _lines(path)
    first = next(records, None)
    if first is None or "header" not in first[1]:
        raise LogFileError(f"{path}: no evalkit log header on line 1; is this an evalkit log?")
    log = EvalLog(location=path, header=first[1]["header"], loaded_samples=[])
    for number, record in records:
        if "footer" in record:
            log.footer = record["footer"]
        elif "header" in record:
            continue  # a resumed run appends a header of its own
        else:
            try:
                log.loaded_samples.append(EvalSample.from_dict(record))
            except KeyError as ex:
                raise LogFileError(f"{path}, line {number}: sample record lacks {ex}") from None
    return log
