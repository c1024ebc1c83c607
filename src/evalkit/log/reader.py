"""Reads a log back, recovering one whose last line a killed process or a full disk damaged.

Reads stream the file line by line: `read_eval_log_samples` holds one sample at a time, and
`read_eval_log(path, header_only=True)` reads only the first line and the last one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from evalkit.errors import LogFileError
from evalkit.log.schema import EvalLog, EvalSample
from evalkit.log.validate import problem

_TAIL_CHUNK = 64 * 1024


def _record(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None when the line is not one."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _open(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise LogFileError(f"log file not found: {path}")
    try:
        return path.open("rb")
    except OSError as ex:
        raise LogFileError(f"cannot read the log {path}: {ex.strerror or ex}") from None


def _damaged(path: Path, number: int) -> LogFileError:
    return LogFileError(f"{path}, line {number}: not valid JSON (a damaged line, or not an evalkit log); "
                        "delete that line to recover the rest")


class _Records:
    """The numbered records of a log, read one line at a time. A line that is not JSON is
    left out when it is the last non-blank line and a record came before it (cut short by a
    kill or a full disk: `ignored` then holds its number); anywhere else it raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ignored: int | None = None

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        seen = False
        with _open(self.path) as handle:
            try:
                for number, raw in enumerate(handle, 1):
                    if not raw.strip():
                        continue
                    if self.ignored is not None:
                        raise _damaged(self.path, self.ignored)
                    record = _record(raw)
                    if record is None:
                        if not seen:
                            raise _damaged(self.path, number)
                        self.ignored = number
                        continue
                    seen = True
                    yield number, record
            except OSError as ex:
                raise LogFileError(f"cannot read the log {self.path}: {ex.strerror or ex}") from None


def _checked(path: Path, number: int, kind: str, record: Any) -> Any:
    wrong = problem(kind, record)
    if wrong:
        raise LogFileError(f"{path}, line {number}: {wrong}; fix or delete that line")
    return record


def _header(path: Path, records: Iterator[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    first = next(records, None)
    if first is None or "header" not in first[1]:
        raise LogFileError(f"{path}: no evalkit log header on line 1; is this an evalkit log?")
    return _checked(path, first[0], "header", first[1]["header"])


def _samples(path: Path, records: Iterator[tuple[int, dict[str, Any]]], into: EvalLog | EvalSampleStream | None,
             on_batch: Callable[[dict[str, Any]], None] | None = None) -> Iterator[EvalSample]:
    """The samples among `records` (after the header); the footer goes to `into` when given,
    and each batch record (batch mode: a provider batch created) to `on_batch`."""
    for number, record in records:
        if "footer" in record:
            if into is not None:
                into.footer = _checked(path, number, "footer", record["footer"])
        elif "batch" in record:
            batch = _checked(path, number, "batch", record["batch"])
            if on_batch is not None:
                on_batch(batch)
        elif "header" not in record:  # a resumed run may append a header of its own
            yield EvalSample.from_dict(_checked(path, number, "sample", record))


class EvalSampleStream(Iterator[EvalSample]):
    """The samples of a log, read one line at a time. Once it is used up, `footer` holds the
    log's footer (None when there is none) and `ignored_line` the number of a damaged last
    line that was left out. `on_batch` is given each batch record as it streams by."""

    def __init__(self, path: Path, on_batch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self.footer: dict[str, Any] | None = None
        self.ignored_line: int | None = None
        self._records = _Records(path)
        lines = iter(self._records)
        self.header = _header(path, lines)
        self._samples = _samples(path, lines, self, on_batch)

    def __next__(self) -> EvalSample:
        try:
            return next(self._samples)
        except StopIteration:
            self.ignored_line = self._records.ignored
            raise


def read_eval_log(path: str | Path, header_only: bool = False) -> EvalLog:
    """Read a whole log. A log with no footer (killed or still running) has status "started";
    a damaged last line is left out (`EvalLog.ignored_line` says which).

    With `header_only`, read the header and the footer only (the first and last lines);
    `samples` are then read from the file when first asked for."""
    path = Path(path)
    if header_only:
        return _read_header_only(path)
    records = _Records(path)
    lines = iter(records)
    log = EvalLog(location=path, header=_header(path, lines), loaded_samples=[])
    log.loaded_samples = list(_samples(path, lines, log))
    log.ignored_line = records.ignored
    return log


def read_eval_log_samples(path: str | Path) -> EvalSampleStream:
    """The samples of a log one at a time, in the order they finished, holding only one in
    memory. The header is checked before this returns; a damaged last line is left out."""
    return EvalSampleStream(Path(path))


def _read_header_only(path: Path) -> EvalLog:
    with _open(path) as handle:
        try:
            first = handle.readline()
            while first and not first.strip():
                first = handle.readline()
            record = _record(first)
            if record is None or "header" not in record:
                if first.strip() and record is None:
                    raise _damaged(path, 1)
                raise LogFileError(f"{path}: no evalkit log header on line 1; is this an evalkit log?")
            log = EvalLog(location=path, header=_checked(path, 1, "header", record["header"]))
            last, start = _last_line(handle)
            tail = _record(last)
            if tail is not None and "footer" in tail:
                if problem("footer", tail["footer"]):
                    _checked(path, _line_number(handle, start), "footer", tail["footer"])
                log.footer = tail["footer"]
        except OSError as ex:
            raise LogFileError(f"cannot read the log {path}: {ex.strerror or ex}") from None
    return log


def _last_line(handle: IO[bytes]) -> tuple[bytes, int]:
    """The last non-blank line of an open file, read backwards from its end, and its offset."""
    position = handle.seek(0, os.SEEK_END)
    data = b""
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
        stripped = data.rstrip()
        cut = stripped.rfind(b"\n")
        if cut >= 0:
            return stripped[cut + 1:], position + cut + 1
    return data.strip(), 0


def _line_number(handle: IO[bytes], offset: int) -> int:
    """The number of the line that starts at `offset`."""
    handle.seek(0)
    newlines = 0
    while offset > 0:
        chunk = handle.read(min(_TAIL_CHUNK, offset))
        newlines += chunk.count(b"\n")
        offset -= len(chunk)
    return newlines + 1
