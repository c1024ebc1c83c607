"""The `evalkit` command: a click group whose user errors print one line and exit 2."""

from __future__ import annotations

import os
import sys

import click

from evalkit import DISTRIBUTION
from evalkit.errors import EvalkitError
from evalkit.secrets import apply_dotenv_settings, scrub


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION, prog_name="evalkit")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def cli(debug: bool) -> None:
    """Evaluate language models: evalkit eval TASK.py --model provider/model."""


def _register_commands() -> None:
    from evalkit.cli.cache_cmd import cache_group
    from evalkit.cli.eval_cmd import eval_command
    from evalkit.cli.eval_set_cmd import eval_set_command
    from evalkit.cli.list_cmd import list_group
    from evalkit.cli.log_cmd import log_group
    from evalkit.cli.providers_cmd import providers_group
    from evalkit.cli.retry_cmd import eval_retry_command
    from evalkit.cli.secrets_cmd import secrets_group
    from evalkit.cli.view_cmd import view_command

    for command in (eval_command, eval_set_command, eval_retry_command, list_group, log_group, providers_group, secrets_group, view_command):
        cli.add_command(command)
    cli.add_command(cache_group)
    from evalkit.cli.models_cmd import models_group

    cli.add_command(models_group)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    apply_dotenv_settings()  # before click reads EVALKIT_MODEL, EVALKIT_LOG_DIR, ...
    debug = "--debug" in args or os.environ.get("EVALKIT_DEBUG") == "1"
    try:
        cli.main(args=args, prog_name="evalkit", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as ex:
        click.echo(ex.ctx.get_help() if ex.ctx else "see 'evalkit --help'")
        sys.exit(0)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as ex:
        if debug:
            raise
        click.echo(f"error: {ex.format_message()} (see 'evalkit --help')", err=True)
        sys.exit(ex.exit_code)
    except EvalkitError as ex:
        if debug:
            raise
        click.echo(f"error: {scrub(str(ex))}", err=True)
        sys.exit(ex.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
