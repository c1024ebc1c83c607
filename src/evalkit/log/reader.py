"""Reads a log back, recovering one whose last line a killed process or a full disk damaged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import LogFileError
from evalkit.log.schema import EvalLog, EvalSample
from evalkit.log.validate import problem


def _record(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None when the line is not one."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _records(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """The numbered records of `path` and the number of a damaged last line that was left out
    (None when there is none). Damage anywhere else raises `LogFileError` naming the line."""
    if not path.is_file():
        raise LogFileError(f"log file not found: {path}")
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as ex:
        raise LogFileError(f"cannot read the log {path}: {ex.strerror or ex}") from None
    numbered = [(number, raw) for number, raw in enumerate(lines, 1) if raw.strip()]
    records: list[tuple[int, dict[str, Any]]] = []
    for number, raw in numbered:
        record = _record(raw)
        if record is not None:
            records.append((number, record))
        elif number == numbered[-1][0] and records:
            return records, number  # cut short (a kill, a full disk) or garbage: the rest is sound
        else:
            raise LogFileError(f"{path}, line {number}: not valid JSON (a damaged line, or not an evalkit log); "
                               "delete that line to recover the rest")
    return records, None


def _checked(path: Path, number: int, kind: str, record: Any) -> Any:
    wrong = problem(kind, record)
    if wrong:
        raise LogFileError(f"{path}, line {number}: {wrong}; fix or delete that line")
    return record


def read_eval_log(path: str | Path) -> EvalLog:
    """Read a whole log. A log with no footer (killed or still running) has status "started";
    a damaged last line is left out (`EvalLog.ignored_line` says which)."""
    path = Path(path)
    records, ignored = _records(path)
    if not records or "header" not in records[0][1]:
        raise LogFileError(f"{path}: no evalkit log header on line 1; is this an evalkit log?")
    number, first = records[0]
    header = _checked(path, number, "header", first["header"])
    log = EvalLog(location=path, header=header, loaded_samples=[], ignored_line=ignored)
    for number, record in records[1:]:
        if "footer" in record:
            log.footer = _checked(path, number, "footer", record["footer"])
        elif "header" not in record:  # a resumed run may append a header of its own
            log.loaded_samples.append(EvalSample.from_dict(_checked(path, number, "sample", record)))  # type: ignore[union-attr]
    return log
