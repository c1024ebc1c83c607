"""Helpers shared by the provider tests (and the end-to-end tests): one-shot generation,
a fake AWS environment, and the source of the small task files the CLI tests evaluate."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import GenerateConfig, Model, ModelOutput, get_model
from evalkit.model.retry import BACKOFF_BASE
from tests.servers.http import Request

NO_RETRIES = GenerateConfig(max_retries=0)

RETRY_AFTER = BACKOFF_BASE + 0.5
"""A Retry-After hint (seconds) longer than any first backoff: a first retry that ignores the
hint comes within BACKOFF_BASE seconds, one that follows it no sooner than this."""


def waited_for_hint(first: Request, second: Request, hint: float = RETRY_AFTER) -> bool:
    """Whether `second` arrived at least `hint` seconds (less a little scheduling slack that
    stays above BACKOFF_BASE) after `first`."""
    return second.arrived - first.arrived >= min(hint - 0.1, BACKOFF_BASE + 0.4)


def generate_and_close(model: Model, input: Any, config: GenerateConfig | None = None) -> ModelOutput:
    """`model.generate` in a fresh event loop, closing the model afterwards."""

    async def main() -> ModelOutput:
        try:
            return await model.generate(input, config)
        finally:
            await model.aclose()

    return anyio.run(main)


def generate_once(
    model_name: str, input: Any, gen: GenerateConfig = NO_RETRIES, *, base_url: str | None = None,
    config: GenerateConfig = GenerateConfig(timeout=10), **model_args: Any,
) -> ModelOutput:
    """One generation from a fresh `get_model(model_name, ...)` (no retries unless `gen` asks)."""
    return generate_and_close(get_model(model_name, base_url=base_url, config=config, **model_args), input, gen)


def isolate_env(monkeypatch: pytest.MonkeyPatch, cwd: Path, unset: Iterable[str] = (), **values: str) -> None:
    """Run in `cwd` (no .env file from the repo), with the variables in `unset` removed and `values` set."""
    monkeypatch.chdir(cwd)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def set_fake_aws_env(monkeypatch: pytest.MonkeyPatch, region: str, unset: Iterable[str] = ()) -> None:
    """Test AWS credentials and `region`, no instance metadata, and no session, profile, AWS_REGION
    or any variable in `unset` from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEVALKITTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", *unset):
        monkeypatch.delenv(name, raising=False)


FACTS_TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import includes
from evalkit.solver import generate, system_message

@task
def facts():
    return Task(
        dataset=[
            Sample(input="What is the capital of Japan?", target="Tokyo"),
            Sample(input="What is 2 + 2?", target="4"),
            Sample(input="How many days are in a week?", target=["7", "seven"]),
        ],
        solver={solver},
        scorer=includes(),
        config={{"temperature": 0.0, "max_tokens": 32}},
    )
'''

QUIZ_TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate, system_message

@task
def quiz():
    return Task(
        dataset=[Sample(input=f"Question {{i}}. ANSWER: {{i * {factor}}}", target=str(i * {factor})) for i in range({count})],
        solver=[system_message("Answer briefly."), generate()],
        scorer=match(),
    )
'''


def facts_task_source(solver: str = "generate()") -> str:
    """A task file asking three questions every backend answers right, with `solver` (source)."""
    return FACTS_TASK.format(solver=solver)


def quiz_task_source(count: int, factor: int) -> str:
    """A task file of `count` samples; sample i's input ends "ANSWER: {i * factor}", its target."""
    return QUIZ_TASK.format(count=count, factor=factor)
