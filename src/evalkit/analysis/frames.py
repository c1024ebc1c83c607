"""`evals_df` and `samples_df`: logs as pandas DataFrames (needs the `analysis` extra)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.analysis.paths import log_paths
from evalkit.analysis.rows import count_lines, run_row, sample_row
from evalkit.errors import ArgumentError
from evalkit.log.reader import read_eval_log, read_eval_log_samples

if TYPE_CHECKING:
    import pandas as pd

LogPaths = str | Path | Iterable[str | Path]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ArgumentError("DataFrames need pandas: pip install 'evalkit-ai[analysis]'") from None
    return pandas


def eval_record(path: Path) -> dict[str, Any]:
    """One run as a flat record: run fields, `score_<scorer>_<metric>` per metric."""
    log = read_eval_log(path, header_only=True)
    row = run_row(log, None if log.footer else count_lines(path))
    metrics = row.pop("metrics")
    record = {"eval_id": row.pop("eval_id"), "log": row.pop("log"), "task_name": row.pop("task"), **row}
    record["total_samples"] = record.pop("total")
    record["completed_samples"] = record.pop("samples")
    record["error_samples"] = record.pop("errors")
    record["total_tokens"] = record.pop("tokens")
    for scorer, values in metrics.items():
        for metric, value in values.items():
            record[f"score_{scorer}_{metric}"] = value
    return record


def sample_records(path: Path) -> Iterator[dict[str, Any]]:
    """The samples of one log as flat records: `score_<scorer>` per scorer and
    `metadata_<field>` per metadata field, one sample in memory at a time."""
    log = read_eval_log(path, header_only=True)
    for sample in read_eval_log_samples(path):
        row = sample_row(sample.to_dict())
        record = {"sample_id": f"{log.eval_id}:{row['id']}:{row['epoch']}", "eval_id": log.eval_id,
                  "log": str(path), "task_name": log.task, "model": log.model}
        scores, metadata = row.pop("scores"), row.pop("metadata")
        record.update(row)
        record["total_time"] = record.pop("time")
        for scorer, value in scores.items():
            record[f"score_{scorer}"] = value
        for name, value in metadata.items():
            record[f"metadata_{name}"] = value
        yield record


def evals_df(logs: LogPaths) -> pd.DataFrame:
    """One row per run in `logs` (log files and folders): task, model, status, counts,
    tokens, duration, times, error and `score_<scorer>_<metric>` columns."""
    pandas = _pandas()
    return pandas.DataFrame.from_records([eval_record(path) for path in log_paths(logs)])


def samples_df(logs: LogPaths) -> pd.DataFrame:
    """One row per (sample, epoch) in `logs`: ids, task, model, input, target, answer,
    `score_<scorer>` and `metadata_<field>` columns, tokens, time, retries, limit and error."""
    pandas = _pandas()
    return pandas.DataFrame.from_records([record for path in log_paths(logs) for record in sample_records(path)])
