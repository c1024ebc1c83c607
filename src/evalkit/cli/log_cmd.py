"""`evalkit log show FILE` and `evalkit log samples FILE`."""

from __future__ import annotations

import click

from evalkit.display import format_metrics


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
    click.echo(f"task:     {log.task}")
    click.echo(f"model:    {log.model}")
    click.echo(f"status:   {log.status}" + ("" if log.footer else " (no footer: the run was interrupted; eval-retry resumes it)"))
    click.echo(f"samples:  {counts.get('completed', 0)} completed, {counts.get('errors', 0)} errors"
               + (f", {counts['total']} total" if "total" in counts else ""))
    for scorer_name, metrics in log.results.items():
        click.echo(f"{scorer_name}:".ljust(10) + format_metrics(metrics, 4))
    for model_name, usage in footer.get("usage", {}).items():
        click.echo(f"usage:    {usage['input_tokens']:,} input + {usage['output_tokens']:,} output = {usage['total_tokens']:,} tokens ({model_name})")
    if "duration" in footer:
        click.echo(f"duration: {footer['duration']:.2f}s")
    if log.error:
        click.echo(f"error:    {log.error}")


@log_group.command("samples")
@click.argument("file")
@click.option("--errors", is_flag=True, help="Only samples that failed.")
def samples(file: str, errors: bool) -> None:
    """One line per sample: id, epoch, scores, answer (or error)."""
    from evalkit.log.reader import read_eval_log

    for sample in read_eval_log(file).samples:
        if errors and sample.error is None:
            continue
        scores = " ".join(f"{name}={score['value']:g}" for name, score in sample.scores.items())
        if sample.error:
            detail = "ERROR " + sample.error.splitlines()[0]
        else:
            detail = repr((sample.output or {}).get("completion", ""))[:120]
        click.echo(f"{sample.id}\tepoch {sample.epoch}\t{scores or '-'}\t{detail}")
