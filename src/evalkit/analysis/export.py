"""`evalkit log export`: the samples of logs as CSV, Parquet or JSON Lines."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import orjson

from evalkit.analysis.frames import LogPaths, sample_records, samples_df
from evalkit.analysis.paths import log_paths
from evalkit.errors import ArgumentError, LogFileError
from evalkit.log.reader import read_eval_log

if TYPE_CHECKING:
    import pandas as pd

ExportFormat = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")


def export_samples(logs: LogPaths, format: ExportFormat, output: str | Path,
                   on_skip: Callable[[str], None] | None = None) -> int:
    """Write one row per (sample, epoch) of `logs` (log files and folders) to `output`; return
    how many rows. `output` itself is never read as a log; a file in a folder that is not an
    evalkit log is skipped, its reason passed to `on_skip` (default: a `UserWarning`). The rows
    go to a temporary file renamed over `output` at the end, so a log that turns out damaged
    leaves `output` as it was. JSON Lines streams a sample at a time; CSV and Parquet go
    through `samples_df`."""
    output = Path(output)
    if output.is_dir():
        raise ArgumentError(f"--output {output} is a folder; name the file to write")
    if format not in FORMATS:
        raise ArgumentError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    paths = export_inputs(logs, output, on_skip or _warn)
    temporary = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        count = _write(paths, format, temporary)
        os.replace(temporary, output)
        return count
    except OSError as ex:
        raise ArgumentError(f"cannot write {output}: {ex.strerror or ex}") from None
    finally:
        temporary.unlink(missing_ok=True)


def export_inputs(logs: LogPaths, output: Path, on_skip: Callable[[str], None]) -> list[Path]:
    """The logs `logs` names, less `output`; a file found in a folder without an evalkit
    header is left out (`on_skip(reason)`), one named directly is an error."""
    given = [logs] if isinstance(logs, (str, Path)) else list(logs)
    named = {Path(each).resolve() for each in given if Path(each).is_file()}
    chosen = []
    for path in log_paths(given):
        if path.resolve() == output.resolve():
            continue
        try:
            read_eval_log(path, header_only=True)
        except LogFileError as ex:
            if path.resolve() in named:
                raise
            on_skip(f"skipped {ex}")
            continue
        chosen.append(path)
    if not chosen:
        raise LogFileError(f"no evalkit logs to export in {', '.join(map(str, given))}")
    return chosen


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _write(paths: list[Path], format: ExportFormat, output: Path) -> int:
    if format == "jsonl":
        return _write_jsonl(paths, output)
    frame = samples_df(paths)
    if format == "csv":
        frame.to_csv(output, index=False)
    else:
        _parquet(frame).to_parquet(output, index=False)
    return len(frame)


def _write_jsonl(paths: Iterable[Path], output: Path) -> int:
    count = 0
    with output.open("xb") as handle:
        for path in paths:
            for record in sample_records(path):
                handle.write(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
                count += 1
    return count


def _parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with mixed-type object columns (scores "C" beside 1.0, dict metadata) as JSON
    text, which Parquet can hold."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ArgumentError("Parquet export needs pyarrow: pip install 'evalkit-ai[analysis]'") from None
    frame = frame.copy()
    for name in frame.columns[frame.dtypes == object]:
        values = frame[name].dropna()
        if not values.map(lambda v: isinstance(v, str)).all():
            frame[name] = frame[name].map(lambda v: None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode())
    return frame
