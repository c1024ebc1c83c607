"""`evalkit eval-set TASKS --log-dir DIR`: `evalkit eval`'s flags, run through `eval_set()`.

The command takes every flag of `eval` (its options are reused, not copied) plus the retry
settings, and runs `eval`'s own callback with `eval_set()` in place of `eval()`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from evalkit.cli.args import FINITE_FLOAT
from evalkit.cli.eval_cmd import eval_command

_SETTINGS = "evalkit.eval_set"
"""Where the eval-set command leaves its retry settings for `runner_for`."""


def runner_for(context: click.Context) -> Callable[..., Any]:
    """`eval()`, or under `eval-set` a function with eval()'s arguments that runs `eval_set()`
    and exits 1 unless every run is complete."""
    settings = context.meta.get(_SETTINGS)
    if settings is None:
        from evalkit.runner import eval as run_eval

        return run_eval
    from evalkit.eval_set import eval_set

    def run_set(tasks: list[str], **eval_args: Any) -> list[Any]:
        success, logs = eval_set(tasks, **settings, **eval_args)
        if not success:
            sys.exit(1)
        return logs

    return run_set


def _eval_set(retry_attempts: int, retry_wait: float, **eval_flags: Any) -> None:
    click.get_current_context().meta[_SETTINGS] = {"retry_attempts": retry_attempts, "retry_wait": retry_wait}
    assert eval_command.callback is not None
    eval_command.callback(**eval_flags)


def _shared_options() -> list[click.Parameter]:
    """eval's arguments and options, `--log-dir` required (it is the set's state)."""
    shared = [param for param in eval_command.params if param.name != "log_dir"]
    log_dir = click.Option(["--log-dir"], type=str, envvar="EVALKIT_LOG_DIR", required=True,
                           help="Where the set's logs live: complete ones are reused, unfinished ones resumed.")
    return [*shared, log_dir]


eval_set_command = click.Command(
    "eval-set",
    callback=_eval_set,
    params=[
        *_shared_options(),
        click.Option(["--retry-attempts"], type=click.IntRange(min=0), default=10, show_default=True,
                     help="Times to retry unfinished runs before giving up."),
        click.Option(["--retry-wait"], type=FINITE_FLOAT, default=30.0, show_default=True,
                     help="Seconds before the first retry, doubled for each one after (at most an hour)."),
    ],
    help="Evaluate TASKS against each model until every (task, model) run has a complete log in "
         "--log-dir; rerunning it reuses complete logs, resumes unfinished ones and starts missing ones.",
)
