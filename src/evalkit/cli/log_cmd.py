"""`evalkit log show FILE` and `evalkit log samples FILE`."""

from __future__ import annotations

from typing import Any

import click

from evalkit.display import format_metrics
from evalkit.secrets import excerpt, scrub


def _echo(text: str) -> None:
    """Print a line with anything shaped like a credential masked (older logs may hold one)."""
    click.echo(scrub(text))


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


@click.group("log")
def log_group() -> None:
    """Inspect eval logs."""


@log_group.command("show")
@click.argument("file")
def show(file: str) -> None:
    """Task, model, status, metrics, counts, usage and duration of a log."""
    from evalkit.log.reader import read_eval_log

    log = read_eval_log(file)
    footer = log.footer or {}
    counts = footer.get("counts") or {"completed": sum(s.error is None for s in log.samples), "errors": sum(s.error is not None for s in log.samples)}
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
    if log.ignored_line:
        _echo(f"note:     line {log.ignored_line} was damaged (cut short) and is left out")


@log_group.command("samples")
@click.argument("file")
@click.option("--errors", is_flag=True, help="Only samples that failed.")
def samples(file: str, errors: bool) -> None:
    """One line per sample: id, epoch, scores, answer (or error)."""
    from evalkit.log.reader import read_eval_log

    for sample in read_eval_log(file).samples:
        if errors and sample.error is None:
            continue
        scores = " ".join(f"{name}={_value(score['value'])}" for name, score in sample.scores.items())
        if sample.error:
            detail = scrub("ERROR " + sample.error.splitlines()[0])
        else:
            detail = excerpt(repr((sample.output or {}).get("completion", "")), 120)
        click.echo(scrub(f"{sample.id}\tepoch {sample.epoch}\t{scores or '-'}\t") + detail)  # detail is masked already
