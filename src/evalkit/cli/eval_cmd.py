"""`evalkit eval`: run tasks from files against a model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from evalkit.cli.args import (
    CONNECTION_COUNT,
    FINITE_FLOAT,
    WHOLE_NUMBER,
    generation_flag_hint,
    load_config_file,
    parse_fail_on_error,
    parse_key_values,
    parse_batch,
    parse_model_roles,
    refuse_generation_settings,
)
from evalkit.cli.cache_cmd import cache_option
from evalkit.errors import ModelArgsError


@click.command("eval")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--model", "-m", multiple=True, envvar="EVALKIT_MODEL",
              help="provider/model; several: a,b or a repeated --model (default: EVALKIT_MODEL, else the bundled local model).")
@click.option("-M", "--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Argument for the provider / its SDK client (repeatable).")
@click.option("--model-config", type=str, help="YAML or JSON file of model arguments (-M wins over it).")
@click.option("--model-role", "model_roles", multiple=True, metavar="ROLE=PROVIDER/MODEL",
              help="A model for a role that solvers and scorers ask for, e.g. grader=openai/gpt-4o (repeatable).")
@click.option("-T", "--task-arg", "task_args", multiple=True, metavar="KEY=VALUE", help="Argument for the @task function (repeatable).")
@click.option("--limit", type=str, help="Evaluate the first N samples, samples M-N (1-based), or a fraction (0.1: the first 10%).")
@click.option("--sample-id", "sample_ids", multiple=True, metavar="ID[,ID...]", help="Evaluate only the samples with these ids (repeatable).")
@click.option("--epochs", type=WHOLE_NUMBER, help="Run each sample this many times.")
@click.option("--max-connections", type=CONNECTION_COUNT,
              help="Concurrent requests to the model (default: the provider's); auto: grow until the server pushes back.")
@click.option("--max-samples", type=WHOLE_NUMBER, help="Samples run at once (default: max connections).")
@click.option("--message-limit", type=WHOLE_NUMBER, help="Most messages a sample's conversation may reach (tool loops end there).")
@click.option("--token-limit", type=WHOLE_NUMBER, help="Most tokens a sample may use, over all its model calls.")
@click.option("--temperature", type=FINITE_FLOAT, help="Sampling temperature (0: greedy).")
@click.option("--max-tokens", type=WHOLE_NUMBER, help="Most tokens to generate.")
@click.option("--top-p", type=FINITE_FLOAT)
@click.option("--top-k", type=WHOLE_NUMBER)
@click.option("--seed", type=WHOLE_NUMBER)
@click.option("--stop-seqs", multiple=True, metavar="TEXT", help="A stop sequence (repeatable).")
@click.option("--num-choices", type=WHOLE_NUMBER, help="Answers to generate per request.")
@click.option("--frequency-penalty", type=FINITE_FLOAT)
@click.option("--presence-penalty", type=FINITE_FLOAT)
@click.option("--logprobs", is_flag=True, default=None, help="Return log probabilities of the output tokens.")
@click.option("--top-logprobs", type=WHOLE_NUMBER, help="Alternatives to return per token with --logprobs.")
@click.option("--max-retries", type=WHOLE_NUMBER, help="Retries of a transient failure (default 5).")
@click.option("--timeout", type=float, help="Seconds one request may take in all, retries and their waits included (default: no limit).")
@click.option("--attempt-timeout", type=float, help="Seconds one attempt may take before it is retried (default 600).")
@click.option("--requests-per-sec", type=FINITE_FLOAT, help="Request rate limit, shared per endpoint and API key.")
@click.option("--tokens-per-sec", type=FINITE_FLOAT, help="Token rate limit (input + output), shared per endpoint and API key.")
@click.option("--reasoning-effort", type=click.Choice(["minimal", "low", "medium", "high"]), help="Effort of reasoning models.")
@click.option("--reasoning-tokens", type=WHOLE_NUMBER, help="Thinking budget in tokens (Anthropic, Gemini).")
@click.option("--parallel-tool-calls/--no-parallel-tool-calls", default=None, help="Allow several tool calls per turn.")
@click.option("--max-tool-output", type=WHOLE_NUMBER, help="Bytes of a tool result shown to the model (default 16 KiB).")
@click.option("--batch", is_flag=False, flag_value="true", default=None, metavar="[SIZE|FILE]", callback=lambda c, p, v: parse_batch(v),
              help="Send requests through the provider's batch API (openai, anthropic, google, together): "
                   "optionally requests per batch, or a YAML/JSON file of BatchConfig fields.")
@click.option("--log-dir", type=str, envvar="EVALKIT_LOG_DIR", default="logs", show_default=True)
@click.option("--fail-on-error", type=str, default="true", show_default=True,
              help="true: stop at the first sample error; false: never; 0-1: past that fraction; N: past N errors.")
@click.option("--display", type=click.Choice(["rich", "plain", "none"]), help="Progress display (default: rich on a terminal).")
@cache_option
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def eval_command(
    tasks: tuple[str, ...],
    model: tuple[str, ...],
    model_args: tuple[str, ...],
    model_config: str | None,
    model_roles: tuple[str, ...],
    task_args: tuple[str, ...],
    limit: str | None,
    sample_ids: tuple[str, ...],
    epochs: int | None,
    max_connections: int | str | None,
    max_samples: int | None,
    message_limit: int | None,
    token_limit: int | None,
    log_dir: str,
    fail_on_error: str,
    display: str | None,
    cache: str | None,
    debug: bool,
    stop_seqs: tuple[str, ...],
    **generate_config: Any,
) -> None:
    """Evaluate TASKS (FILE.py or FILE.py@task) against a model."""
    from evalkit.cli.eval_set_cmd import runner_for
    from evalkit.cli.model_list import parse_models

    run_eval = runner_for(click.get_current_context())  # eval-set runs this command's flags through eval_set()
    parsed_model_args = _model_args(model_args, model_config)
    with _hint_generation_flags(parsed_model_args):
        logs = run_eval(
            list(tasks),
            model=parse_models(model),
            model_args=parsed_model_args,
            model_roles=parse_model_roles(model_roles),
            task_args=parse_key_values(task_args, "-T"),
            limit=limit,
            sample_id=list(sample_ids) or None,
            epochs=epochs,
            max_connections=max_connections,
            max_samples=max_samples,
            message_limit=message_limit,
            token_limit=token_limit,
            log_dir=log_dir,
            fail_on_error=parse_fail_on_error(fail_on_error),
            display=display,  # type: ignore[arg-type]
            cache=cache,
            stop_seqs=stop_seqs or None,
            **generate_config,
        )
    if any(log.status != "success" for log in logs):
        sys.exit(1)


def _model_args(model_args: tuple[str, ...], model_config: str | None) -> dict[str, Any]:
    """`--model-config` overlaid by `-M`, refusing generation settings given as model arguments."""
    from evalkit.model.model import LIMIT_ARGS

    passed_on = LIMIT_ARGS | {"timeout"}  # the Model's limits, and the SDK client's own timeout
    from_file = load_config_file(model_config, "--model-config") if model_config else {}
    refuse_generation_settings(from_file, f"--model-config {model_config}:", passed_on)
    from_flags = parse_key_values(model_args, "-M")
    refuse_generation_settings(from_flags, "-M", passed_on)
    return {**from_file, **from_flags}


@contextmanager
def _hint_generation_flags(model_args: dict[str, Any]) -> Iterator[None]:
    """Adds 'did you mean --temperature?' when the provider rejects a mistyped generation setting."""
    try:
        yield
    except ModelArgsError as ex:
        hint = generation_flag_hint(model_args)
        if not hint:
            raise
        raise ModelArgsError(f"{ex}; {hint}") from ex
