"""`evalkit log export`: the samples of logs as CSV, Parquet or JSON Lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import orjson

from evalkit.analysis.frames import LogPaths, sample_records, samples_df
from evalkit.analysis.paths import log_paths
from evalkit.errors import ArgumentError

if TYPE_CHECKING:
    import pandas as pd

ExportFormat = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")


def export_samples(logs: LogPaths, format: ExportFormat, output: str | Path) -> int:
    """Write one row per (sample, epoch) of `logs` to `output`; return how many rows.
    JSON Lines streams a sample at a time; CSV and Parquet go through `samples_df`."""
    output = Path(output)
    if output.is_dir():
        raise ArgumentError(f"--output {output} is a folder; name the file to write")
    try:
        if format == "jsonl":
            return _write_jsonl(log_paths(logs), output)
        frame = samples_df(logs)
        if format == "csv":
            frame.to_csv(output, index=False)
        elif format == "parquet":
            _parquet(frame).to_parquet(output, index=False)
        else:
            raise ArgumentError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
        return len(frame)
    except OSError as ex:
        raise ArgumentError(f"cannot write {output}: {ex.strerror or ex}") from None


def _write_jsonl(paths: Iterable[Path], output: Path) -> int:
    count = 0
    with output.open("wb") as handle:
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
        raise ArgumentError("Parquet export needs pyarrow: pip install 'evalkit[analysis]'") from None
    frame = frame.copy()
    for name in frame.columns[frame.dtypes == object]:
        values = frame[name].dropna()
        if not values.map(lambda v: isinstance(v, str)).all():
            frame[name] = frame[name].map(lambda v: None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode())
    return frame
