"""`evalkit log list|show|samples|compare|export`: look at logs from the terminal."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from evalkit.display import format_metrics
from evalkit.secrets import excerpt, scrub

if TYPE_CHECKING:
    from evalkit.log.schema import EvalSample


def _echo(text: str) -> None:
    """Print a line with anything shaped like a credential masked (older logs may hold one)."""
    click.echo(scrub(text))


def _warn(message: str) -> None:
    click.echo(scrub(f"warning: {message}"), err=True)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _default_log_dir() -> str:
    return os.environ.get("EVALKIT_LOG_DIR", "logs")


@click.group("log")
def log_group() -> None:
    """Inspect eval logs."""


@log_group.command("list")
@click.argument("log_dir", required=False)
def list_logs(log_dir: str | None) -> None:
    """A table of the runs in LOG_DIR (default: $EVALKIT_LOG_DIR or ./logs), oldest first."""
    from evalkit.analysis.paths import log_paths
    from evalkit.analysis.rows import count_lines, run_row
    from evalkit.errors import LogFileError
    from evalkit.log.reader import read_eval_log

    folder = Path(log_dir or _default_log_dir())
    if not folder.is_dir():
        raise LogFileError(f"log folder not found: {folder}; pass the folder your runs wrote to (--log-dir)")
    rows = []
    for path in log_paths(folder):
        try:
            log = read_eval_log(path, header_only=True)
        except LogFileError as ex:
            _warn(f"skipped {ex}")
            continue
        rows.append(run_row(log, None if log.footer else count_lines(path)))
    if not rows:
        click.echo(f"no logs in {folder}")
        return
    table = [("started", "task", "model", "status", "samples", "metrics", "tokens", "duration", "log")]
    for row in rows:
        table.append(((row["started"] or "")[:19].replace("T", " "), row["task"], row["model"], row["status"],
                      f"{row['samples'] or 0}/{row['total'] or '?'}", _headline(row["metrics"]),
                      f"{row['tokens']:,}" if row["tokens"] is not None else "-",
                      f"{row['duration']:.1f}s" if row["duration"] is not None else "-",
                      os.path.relpath(row["log"], folder)))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        _echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _headline(metrics: dict[str, dict[str, Any]]) -> str:
    """Each scorer's first metric, e.g. "match/accuracy=0.75"."""
    shown = [f"{scorer}/{name}={_value(value)}" for scorer, values in metrics.items()
             for name, value in list(values.items())[:1]]
    return " ".join(shown) or "-"


@log_group.command("show")
@click.argument("files", nargs=-1, required=True)
def show(files: tuple[str, ...]) -> None:
    """Task, model, status, metrics, counts, usage and duration of logs (files or folders)."""
    from evalkit.analysis.paths import log_paths

    paths = log_paths(files)
    for number, path in enumerate(paths):
        if len(paths) > 1:
            _echo(("\n" if number else "") + f"== {path}")
        _show_one(path)


def _show_one(file: Path) -> None:
    from evalkit.log.reader import read_eval_log, read_eval_log_samples

    log = read_eval_log(file, header_only=True)
    samples = read_eval_log_samples(file)  # every line is checked, one at a time
    counted = _count(samples)
    footer = log.footer or {}
    counts = footer.get("counts") or counted
    _echo(f"task:     {log.task}")
    _echo(f"model:    {log.model}")
    _echo(f"status:   {log.status}" + ("" if log.footer else " (no footer: the run was interrupted; eval-retry resumes it)"))
    _echo(f"samples:  {counts.get('completed', 0)} completed, {counts.get('errors', 0)} errors"
               + (f", {counts['total']} total" if "total" in counts else ""))
    for scorer_name, metrics in log.results.items():
        _echo(f"{scorer_name}:".ljust(10) + format_metrics(metrics, 4))
    for model_name, usage in footer.get("usage", {}).items():
        _echo(f"usage:    {usage['input_tokens']:,} input + {usage['output_tokens']:,} output = {usage['total_tokens']:,} tokens ({model_name})")
    if "duration" in footer:
        _echo(f"duration: {footer['duration']:.2f}s")
    if log.error:
        _echo(f"error:    {log.error}")
    if samples.ignored_line:
        _echo(f"note:     line {samples.ignored_line} was damaged (cut short) and is left out")


def _count(samples: Iterable[EvalSample]) -> dict[str, int]:
    counts = {"completed": 0, "errors": 0}
    for sample in samples:
        counts["errors" if sample.error is not None else "completed"] += 1
    return counts


@log_group.command("samples")
@click.argument("file")
@click.option("--errors", is_flag=True, help="Only samples that failed.")
def samples(file: str, errors: bool) -> None:
    """One line per sample: id, epoch, scores, answer (or error)."""
    from evalkit.log.reader import read_eval_log_samples

    for sample in read_eval_log_samples(file):
        if errors and sample.error is None:
            continue
        scores = " ".join(f"{name}={_value(score['value'])}" for name, score in sample.scores.items())
        if sample.error:
            detail = scrub("ERROR " + sample.error.splitlines()[0])
        else:
            detail = excerpt(repr((sample.output or {}).get("completion", "")), 120)
        click.echo(scrub(f"{sample.id}\tepoch {sample.epoch}\t{scores or '-'}\t") + detail)  # detail is masked already


@log_group.command("compare")
@click.argument("files", nargs=-1, required=True)
@click.option("--limit", "shown", type=int, default=50, show_default=True, help="Most samples to list (0: all).")
def compare(files: tuple[str, ...], shown: int) -> None:
    """Metrics side by side and the samples whose scores differ, for two or more runs of one task."""
    from evalkit.analysis.compare import check_comparable, flip_text, metric_table, sample_key, score_differences
    from evalkit.log.reader import read_eval_log, read_eval_log_samples

    logs = [read_eval_log(file, header_only=True) for file in files]
    check_comparable(logs)
    for number, log in enumerate(logs, 1):
        _echo(f"[{number}] {log.model}  {log.status}  {log.location}")
    for scorer, metric, values in metric_table(logs):
        _echo(f"{scorer}/{metric}:".ljust(24) + "  ".join("-" if v is None else f"{_value(round(v, 4))}" for v in values))
    runs = [{sample_key(s.id, s.epoch): {n: sc.get("value") for n, sc in s.scores.items()}
             for s in read_eval_log_samples(log.location)} for log in logs]
    differing = score_differences(runs)
    _echo(f"{len(differing)} of {len(set().union(*runs))} samples differ")
    for (sample_id, epoch), scores in differing[: shown or None]:
        scorers = dict.fromkeys(name for s in scores if s for name in s)
        flips = "  ".join(f"{name}: {flip_text(scores, name)}" for name in scorers) or "missing from a run"
        _echo(f"  {sample_id}\tepoch {epoch}\t{flips}")
    if shown and len(differing) > shown:
        _echo(f"  ... {len(differing) - shown} more (--limit 0 lists all)")


@log_group.command("export")
@click.argument("logs", nargs=-1, required=True)
@click.option("--format", "format_", type=click.Choice(["csv", "parquet", "jsonl"]), default="csv", show_default=True)
@click.option("--output", "-o", required=True, help="The file to write.")
def export(logs: tuple[str, ...], format_: str, output: str) -> None:
    """One row per sample and epoch of LOGS (files or folders) as CSV, Parquet or JSON Lines.
    Files in a folder that are not evalkit logs (an earlier export among them) are skipped."""
    from evalkit.analysis.export import export_samples

    count = export_samples(logs, format_, output, on_skip=_warn)  # type: ignore[arg-type]
    click.echo(f"wrote {count} samples to {output}")
