"""Helpers shared by the provider tests (and the end-to-end tests): one-shot generation and
embedding, the checks every HTTP provider runs (errors not retried, errors retried, Model.embed
in batches, the CLI), a fake AWS environment, and the small task files the CLI tests evaluate."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import EvalLog, GenerateConfig, Model, ModelOutput, get_model, read_eval_log
from evalkit.errors import EvalkitError
from evalkit.model.retry import BACKOFF_BASE
from tests.conftest import REPO, run_cli
from tests.servers.http import Handler, RecordingServer, Reply, Request
from tests.servers.openai_server import scripted

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


ModelFor = Callable[[str], Model]
"""Makes the model under test for a local server's URL."""


def embed_and_close(model: Model, texts: list[str], config: GenerateConfig | None = None) -> list[list[float]]:
    """`model.embed(texts)` in a fresh event loop, closing the model afterwards."""

    async def main() -> list[list[float]]:
        try:
            return await model.embed(texts, config)
        finally:
            await model.aclose()

    return anyio.run(main)


def check_not_retried(model_for: ModelFor, reply: Reply, message: str, error: type[Exception] = EvalkitError) -> None:
    """A request answered by `reply` (one no retry fixes) fails with `error` matching `message`,
    after that one request."""
    with RecordingServer(lambda request: reply) as server:
        model = model_for(server.url)
        with pytest.raises(error, match=message):
            generate_and_close(model, "ANSWER: never", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1 and model.retries == 0


def check_retried(model_for: ModelFor, errors: list[Reply], reply: Handler) -> list[Request]:
    """Each of `errors` (the first asking for RETRY_AFTER seconds) retried once, then `reply`
    answers: the output is its answer, and the first retry waited for the hint. Returns the
    requests the server saw."""
    with RecordingServer(scripted(errors, reply)) as server:
        model = model_for(server.url)
        output = generate_and_close(model, "ANSWER: eventually", GenerateConfig(max_retries=len(errors) + 2))
    assert output.completion == "eventually"
    assert model.retries == len(errors) and len(server.requests) == len(errors) + 1
    assert waited_for_hint(server.requests[0], server.requests[1])
    return server.requests


def check_gives_up(model_for: ModelFor, reply: Reply, error: type[Exception]) -> None:
    """A server error that persists (`reply`) is retried once (max_retries=1), then raised as `error`."""
    with RecordingServer(lambda request: reply) as server:
        with pytest.raises(error):
            generate_and_close(model_for(server.url), "ANSWER: never", GenerateConfig(max_retries=1))
    assert len(server.requests) == 2


def numbered_texts(count: int) -> list[str]:
    """`count` texts, each with its own length and its own count of each letter."""
    return [f"text number {i} " + "z" * i for i in range(count)]


def check_model_embed(
    model_for: ModelFor, errors: list[Reply], reply: Handler, field: str, batch: int
) -> tuple[list[list[float]], list[Request]]:
    """`Model.embed` of `numbered_texts(batch + 4)`: after `errors` (each retried once) they go
    in two requests of `batch` and 4 texts (the body's `field`), in order. Returns the vectors
    and the requests."""
    texts = numbered_texts(batch + 4)
    with RecordingServer(scripted(errors, reply)) as server:
        model = model_for(server.url)
        vectors = embed_and_close(model, texts)
    assert len(server.requests) == len(errors) + 2 and model.retries == len(errors)
    sent = sorted((r.json()[field] for r in server.requests[len(errors):]), key=len, reverse=True)
    assert [len(texts) for texts in sent] == [batch, 4] and sent[0] + sent[1] == texts
    return vectors, server.requests


def cli_eval(model: str, log_dir: Path, *args: str, env: dict[str, str], limit: int = 1,
             **options: Any) -> subprocess.CompletedProcess[str]:
    """`evalkit eval tasks/factual_qa.py --model MODEL --limit LIMIT ARGS --log-dir LOG_DIR` with `env`."""
    return run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", model, "--limit", str(limit), *args,
                   "--log-dir", str(log_dir), env=env, **options)


def cli_log(result: subprocess.CompletedProcess[str], log_dir: Path, secret: str) -> EvalLog:
    """The one log of a CLI run that succeeded, checked to hold no trace of `secret`."""
    assert result.returncode == 0, result.stderr
    [path] = log_dir.glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success" and secret not in path.read_text()
    return log


def check_cli_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """The CLI run failed with `message` in its errors and no traceback."""
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr


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
