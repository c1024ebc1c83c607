"""Anthropic Message Batches: the real anthropic SDK talking to a local Message Batches server,
through the provider's batch protocol, batch_body and batch_output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import evalkit
from evalkit import BatchConfig, ChatMessageUser, GenerateConfig, ModelOutput
from evalkit.errors import BatchUnsupportedError
from evalkit.model.batch.protocol import BatchRequest
from evalkit.providers.common.http_errors import ProviderRequestError
from tests.conftest import run_cli
from tests.providers.batch_checks import check_collected_without_resubmitting, question, run_batch
from tests.providers.helpers import generate_and_close, isolate_env
from tests.providers.test_anthropic import ENV, KEY
from tests.servers.anthropic_batch_server import BATCH_CANCEL, BATCH_ERROR, BATCH_ERROR_ONCE, BATCH_EXPIRE, AnthropicBatchServer
from tests.servers.anthropic_server import messages_reply
from tests.servers.batch_ledger import Ledger
from tests.servers.http import RecordingServer

MODEL = "claude-haiku-4-5"
CONFIG = GenerateConfig(max_tokens=32, temperature=0.0)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_env(monkeypatch, tmp_path, unset=ENV, ANTHROPIC_API_KEY=KEY)


def test_batch_params_are_what_generate_sends_and_outputs_are_parsed_alike() -> None:
    inputs = [question(i) for i in range(3)]
    with AnthropicBatchServer(polls_to_finish=3) as server:
        model = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url)
        direct = generate_and_close(model, inputs[1], CONFIG)
        statuses, results = anyio.run(run_batch, model.api, inputs, CONFIG)
    sent_directly, create, *polls = server.requests
    assert (create.method, create.path) == ("POST", "/v1/messages/batches")
    assert create.headers["authorization"] == f"Bearer {KEY}" and create.headers["anthropic-version"]
    wire = create.json()["requests"]
    assert [item["custom_id"] for item in wire] == ["q0", "q1", "q2"]
    assert wire[1]["params"] == sent_directly.json() == {
        "model": MODEL, "max_tokens": 32, "temperature": 0.0, "system": "Answer with a number.",
        "messages": [{"role": "user", "content": "What is 1 * 7? ANSWER: 7"}],
    }
    [batch_id] = server.ledger.batches
    assert [(r.method, r.path) for r in polls] == [("GET", f"/v1/messages/batches/{batch_id}")] * 4 + [
        ("GET", f"/v1/messages/batches/{batch_id}/results")]  # 3 polls, then results() looks the batch up first
    assert [s.state for s in statuses] == ["running", "running", "ended"]
    assert (statuses[0].completed, statuses[0].total, statuses[-1].completed, statuses[-1].failed) == (0, 3, 3, 0)
    outputs: dict[str, ModelOutput] = {custom_id: model.api.batch_output(body) for custom_id, body in results.items()}
    assert {custom_id: o.completion for custom_id, o in outputs.items()} == {"q0": "0", "q1": "7", "q2": "14"}
    assert outputs["q1"].completion == direct.completion and outputs["q1"].usage == direct.usage
    assert outputs["q1"].stop_reason == direct.stop_reason == "stop" and outputs["q1"].model == MODEL


def test_errored_expired_and_canceled_requests_become_errors_the_provider_classifies() -> None:
    prompts = {"ok": "ANSWER: 5", "invalid": f"{BATCH_ERROR} invalid_request_error", "overloaded": f"{BATCH_ERROR} overloaded_error",
               "limited": f"{BATCH_ERROR} rate_limit_error", "expired": BATCH_EXPIRE, "canceled": BATCH_CANCEL}
    with AnthropicBatchServer(polls_to_finish=1) as server:
        api = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url).api
        statuses, results = anyio.run(run_batch, api, [[ChatMessageUser(p)] for p in prompts.values()], CONFIG)
    assert (statuses[-1].state, statuses[-1].completed, statuses[-1].failed) == ("ended", 1, 5)
    by_name = {name: results[f"q{i}"] for i, name in enumerate(prompts)}
    assert api.batch_output(by_name["ok"]).completion == "5"
    invalid = by_name["invalid"]
    assert isinstance(invalid, ProviderRequestError) and invalid.status == 400
    assert str(invalid) == "anthropic: request rejected (HTTP 400): invalid_request_error"
    assert not api.is_retryable(invalid)
    assert api.is_retryable(by_name["overloaded"]) and not api.is_rate_limit(by_name["overloaded"])
    assert "overloaded_error: Overloaded" in str(by_name["overloaded"])
    assert api.is_retryable(by_name["limited"]) and api.is_rate_limit(by_name["limited"])
    assert api.is_retryable(by_name["expired"]) and str(by_name["expired"]) == "anthropic: the batch expired before this request was processed"
    assert api.is_retryable(by_name["canceled"]) and str(by_name["canceled"]) == "anthropic: the request was canceled"


def test_a_request_the_messages_api_refuses_is_errored_with_its_message() -> None:
    body_problem = [ChatMessageUser("ANSWER: x")]
    with AnthropicBatchServer(polls_to_finish=1) as server:
        api = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url).api

        async def scenario() -> Any:
            protocol = api.batch_protocol()
            body = await api.batch_body(body_problem, [], None, CONFIG)
            body["messages"].append({"role": "user", "content": " "})  # blank content, as the API refuses
            batch_id = await protocol.submit([BatchRequest("blank", body)])
            await protocol.status(batch_id)
            results = await protocol.results(batch_id)
            await api.aclose()
            return results["blank"]

        error = anyio.run(scenario)
    assert isinstance(error, ProviderRequestError) and "must have non-empty content" in str(error)


@pytest.mark.parametrize(("outcome", "reason"), [("expired", "expired (2 requests unprocessed after 24 hours)"),
                                                 ("canceled", "was canceled (2 canceled, 0 expired)")])
def test_a_batch_that_ended_with_nothing_processed_has_failed(outcome: str, reason: str) -> None:
    with AnthropicBatchServer(polls_to_finish=2, outcome=outcome) as server:
        api = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url).api
        statuses, results = anyio.run(run_batch, api, [question(1), question(2)], CONFIG)
    [batch_id] = server.ledger.batches
    assert [s.state for s in statuses] == ["running", "failed"]
    assert statuses[-1].error == f"anthropic: batch {batch_id} {reason}"
    assert (statuses[-1].failed, statuses[-1].total) == (2, 2) and results == {}
    assert statuses[-1].retryable  # its requests are sent again


def test_a_refused_batch_fails_in_one_line() -> None:
    with AnthropicBatchServer() as server:
        api = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url).api

        async def scenario() -> None:
            body = await api.batch_body(question(1), [], None, CONFIG)
            try:
                with pytest.raises(ProviderRequestError, match=r"^anthropic: request rejected \(HTTP 400\): custom_id values must be unique$"):
                    await api.batch_protocol().submit([BatchRequest("same", body), BatchRequest("same", body)])
                with pytest.raises(ProviderRequestError, match="HTTP 404"):
                    await api.batch_protocol().status("msgbatch_unknown")
            finally:
                await api.aclose()

        anyio.run(scenario)


@pytest.mark.parametrize("model", ["anthropic/bedrock/anthropic.claude-3-haiku", "anthropic/vertex/claude-3-haiku"])
def test_bedrock_and_vertex_claude_have_no_batch_mode(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-2",
                        "ANTHROPIC_VERTEX_PROJECT_ID": "my-project", "ANTHROPIC_VERTEX_REGION": "us-east5"}.items():
        monkeypatch.setenv(name, value)
    args = {"access_token": "ya29.test-token"} if "vertex" in model else {}
    with pytest.raises(BatchUnsupportedError, match=r"^anthropic/(bedrock|vertex): batch mode is not supported; run without --batch$"):
        evalkit.get_model(model, **args).api.batch_protocol()


TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate, system_message

@task
def quiz(count: int = {count}, marker: str = "{marker}"):
    flagged = lambda i: f" ({{marker}})" if marker and i % 5 == 0 else ""
    return Task(
        dataset=[Sample(input=f"Question {{i}}{{flagged(i)}}. ANSWER: {{i * 3}}", target=str(i * 3), id=i) for i in range(count)],
        solver=[system_message("Answer briefly."), generate()],
        scorer=match(),
    )
'''
FAST = BatchConfig(size=10, tick=0.05, send_delay=0.5)
"""Small batches polled often, so tests take a second."""


def quiz_task(tmp_path: Path, count: int, marker: str = "") -> Path:
    """A task of `count` samples, sample i answered "i * 3"; with a `marker`, every fifth
    sample's prompt carries it (e.g. "BATCH_ERROR_ONCE: overloaded_error": its first result is errored)."""
    path = tmp_path / "quiz.py"
    path.write_text(TASK.format(count=count, marker=marker))
    return path


def test_eval_in_batch_mode_scores_every_sample_from_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicBatchServer(polls_to_finish=2) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        [log] = evalkit.eval(str(quiz_task(tmp_path, 25)), model=f"anthropic/{MODEL}", batch=FAST, log_dir=tmp_path / "logs",
                             display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0 and len(log.samples) == 25
    assert sorted(len(batch.requests) for batch in server.ledger.batches.values()) == [5, 10, 10]
    assert server.ledger.duplicates() == [] and sum(server.ledger.submitted.values()) == 25
    assert not any(r.path == "/v1/messages" for r in server.requests)  # nothing went direct
    params = [body for batch in server.ledger.batches.values() for body in batch.requests.values()]
    assert {p["system"] for p in params} == {"Answer briefly."} and {p["model"] for p in params} == {MODEL}


def test_eval_in_batch_mode_retries_errored_requests_in_a_later_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicBatchServer(polls_to_finish=1) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        [log] = evalkit.eval(str(quiz_task(tmp_path, 20, f"{BATCH_ERROR_ONCE} overloaded_error")), model=f"anthropic/{MODEL}", batch=FAST,
                             log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0 and len(log.samples) == 20
    sizes = [len(batch.requests) for batch in server.ledger.batches.values()]
    assert sum(sizes) == 24 and len(sizes) >= 3  # 20 first requests, then the 4 errored ones again
    assert server.ledger.duplicates() == []  # each retry went under a custom_id of its own


def test_batch_creation_errors_are_classified_as_the_providers_requests_are() -> None:
    with AnthropicBatchServer(refuse_creates=(529, 429, 401)) as server:
        api = evalkit.get_model(f"anthropic/{MODEL}", base_url=server.url).api

        async def scenario() -> list[BaseException]:
            body = await api.batch_body(question(1), [], None, CONFIG)
            raised = []
            for _ in range(3):
                with pytest.raises(Exception) as caught:
                    await api.batch_protocol().submit([BatchRequest("q1", body)])
                raised.append(caught.value)
            await api.aclose()
            return raised

        overloaded, limited, unauthorized = anyio.run(scenario)
    assert api.is_retryable(overloaded) and not api.is_rate_limit(overloaded)
    assert api.is_retryable(limited) and api.is_rate_limit(limited)
    assert isinstance(unauthorized, ProviderRequestError) and not api.is_retryable(unauthorized)
    assert str(unauthorized) == "anthropic: authentication failed (HTTP 401); check ANTHROPIC_API_KEY: refused with HTTP 401"


def logged_batches(log_dir: Path) -> list[dict[str, Any]]:
    """The batch records of the one log in `log_dir` so far."""
    logs = list(log_dir.glob("*.jsonl"))
    lines = [orjson.loads(line) for line in logs[0].read_bytes().splitlines() if line.strip()] if logs else []
    return [line["batch"] for line in lines if "batch" in line]


def kill_then_retry(tmp_path: Path, model: str, ledger: Ledger, batches: int) -> tuple[Path, int, subprocess.CompletedProcess[str]]:
    """Run a 60-sample eval in batch mode (size 20) in a process, SIGKILL it once the log records
    `batches` batches (the server holding them unfinished), let the batches finish and run
    eval-retry on the log; the log, the batches created before the kill, and eval-retry's result."""
    log_dir = tmp_path / "logs"
    args = [sys.executable, "-m", "evalkit", "eval", str(quiz_task(tmp_path, 60)), "--model", model, "--batch", "20",
            "--log-dir", str(log_dir), "--display", "none"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 60
    while len(logged_batches(log_dir)) < batches:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run never recorded its batches"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    created = len(ledger.batches)
    ledger.polls_to_finish = 1
    [log] = log_dir.glob("*.jsonl")
    return log, created, run_cli("eval-retry", str(log), "--display", "none", cwd=tmp_path)


def test_sigkill_mid_batch_then_eval_retry_collects_the_running_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicBatchServer(polls_to_finish=10**9) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        log, created, result = kill_then_retry(tmp_path, f"anthropic/{MODEL}", server.ledger, batches=3)
    check_collected_without_resubmitting(server.ledger, log, created, result)


def test_claude_on_vertex_ignores_batch_mode_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "my-project")
    monkeypatch.setenv("ANTHROPIC_VERTEX_REGION", "us-east5")
    with RecordingServer(messages_reply) as server:
        monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", server.url)
        with pytest.warns(UserWarning, match="provider 'anthropic/vertex' has no batch API: batch mode is ignored"):
            [log] = evalkit.eval(str(quiz_task(tmp_path, 6)), model="anthropic/vertex/claude-haiku-4-5",
                                 model_args={"access_token": "ya29.test-token"}, batch=FAST, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    assert len(server.requests) == 6 and all(r.path.endswith("/models/claude-haiku-4-5:rawPredict") for r in server.requests)
