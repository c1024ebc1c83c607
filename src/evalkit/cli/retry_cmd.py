"""`evalkit eval-retry LOG`: finish an interrupted or failed eval in the same log."""

from __future__ import annotations

import sys

import click

from evalkit.cli.args import CONNECTION_COUNT, parse_fail_on_error, parse_key_values, parse_model_roles


@click.command("eval-retry")
@click.argument("log_file")
@click.option("-M", "--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Override a logged model argument.")
@click.option("--model-role", "model_roles", multiple=True, metavar="ROLE=PROVIDER/MODEL", help="Override a logged model role.")
@click.option("--max-connections", type=CONNECTION_COUNT, help="Concurrent requests to the model (a number or auto).")
@click.option("--max-samples", type=int, help="Samples run at once.")
@click.option("--fail-on-error", type=str, help="As for eval (default: the logged setting).")
@click.option("--display", type=click.Choice(["rich", "plain", "none"]))
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def eval_retry_command(
    log_file: str,
    model_args: tuple[str, ...],
    model_roles: tuple[str, ...],
    max_connections: int | str | None,
    max_samples: int | None,
    fail_on_error: str | None,
    display: str | None,
    debug: bool,
) -> None:
    """Run only the samples LOG_FILE lacks or that errored, and complete that log."""
    from evalkit.runner import eval_retry

    log = eval_retry(
        log_file,
        model_args=parse_key_values(model_args, "-M"),
        model_roles=parse_model_roles(model_roles),
        max_connections=max_connections,
        max_samples=max_samples,
        fail_on_error=parse_fail_on_error(fail_on_error) if fail_on_error else None,
        display=display,  # type: ignore[arg-type]
    )
    if log.status != "success":
        sys.exit(1)
