"""Retries, rate limits, resume and redaction through a real provider (openai SDK) talking HTTP
to a recording server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import anyio

from evalkit import Sample, Task, eval, eval_async, read_eval_log
from evalkit.scorer import match
from tests.conftest import run_cli
from tests.providers.helpers import isolate_env, set_fake_aws_env
from tests.servers.http import RecordingServer, Reply, Request

KEY = "sk-evalkit-test-8Hq2Zr7Yw1"


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 2) -> dict:
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }


def answer(request: Request) -> Reply:
    """Reply with the X of the last message's `ANSWER: X`."""
    content = request.json()["messages"][-1]["content"]
    return Reply(body=completion(content.split("ANSWER:")[-1].strip()))


def qa_task(n: int) -> Task:
    return Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i)) for i in range(n)], scorer=match(), name="qa")


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def busiest_window(arrivals: list[tuple[float, float]]) -> float:
    """The most weight (requests or tokens) arriving within any one-second window (both ends
    included), from `(moment, weight)` pairs."""
    arrivals = sorted(arrivals)
    worst = total = 0.0
    start = 0
    for moment, weight in arrivals:
        total += weight
        while moment - arrivals[start][0] > 1.0:
            total -= arrivals[start][1]
            start += 1
        worst = max(worst, total)
    return worst


def request_arrivals(server: RecordingServer) -> list[tuple[float, float]]:
    return [(r.arrived, 1.0) for r in server.requests]


def run_concurrently(*runs: dict) -> list:
    """Run one `eval_async(**kwargs)` per dict at the same time in one event loop; their logs."""
    results: list = [None] * len(runs)

    async def main() -> None:
        async def one(index: int) -> None:
            results[index] = await eval_async(**runs[index])

        async with anyio.create_task_group() as group:
            for index in range(len(runs)):
                group.start_soon(one, index)

    anyio.run(main)
    return [log for logs in results for log in logs]


def test_requests_per_sec_caps_every_one_second_window(openai_env: None, log_dir: Path) -> None:
    """Many connections, few requests a second: any one-second window holds at most the limit
    plus one, and the requests still come at the limit, not below it."""
    with RecordingServer(answer) as server:
        [log] = eval(qa_task(40), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     requests_per_sec=10, max_connections=64, log_dir=log_dir, display="none")
    arrivals = sorted(r.arrived for r in server.requests)
    assert log.status == "success" and len(arrivals) == 40
    assert busiest_window(request_arrivals(server)) <= 11
    assert arrivals[-1] - arrivals[0] >= 3.8  # 40 requests spaced 0.1 s apart
    assert sum(1 for moment in arrivals if moment - arrivals[0] < 2.0) >= 15  # the limit is reached at once


def test_evals_on_one_endpoint_share_its_request_limit(openai_env: None, log_dir: Path) -> None:
    """Two evals at once on one endpoint and key, with different model names, max_connections
    and limits, share one limit: together they never pass the higher of the two."""
    with RecordingServer(answer) as server:
        base = {"tasks": qa_task(15), "log_dir": log_dir, "display": "none"}
        logs = run_concurrently(
            {**base, "model": "openai/gpt-a", "model_args": {"base_url": f"{server.url}/v1"}, "requests_per_sec": 10, "max_connections": 8},
            {**base, "model": "openai/gpt-b", "model_args": {"base_url": f"{server.url}/v1"}, "requests_per_sec": 8, "max_connections": 32},
        )
    assert [log.status for log in logs] == ["success", "success"] and len(server.requests) == 30
    assert busiest_window(request_arrivals(server)) <= 11


def test_request_limits_are_per_credential(log_dir: Path) -> None:
    """Two keys are two accounts: each gets its own limit on the same endpoint."""
    with RecordingServer(answer) as server:
        base = {"tasks": qa_task(20), "model": "openai/gpt-test", "requests_per_sec": 10, "log_dir": log_dir, "display": "none"}
        logs = run_concurrently(
            {**base, "model_args": {"base_url": f"{server.url}/v1", "api_key": KEY}},
            {**base, "model_args": {"base_url": f"{server.url}/v1", "api_key": KEY + "-other"}},
        )
    assert [log.status for log in logs] == ["success", "success"]
    assert busiest_window(request_arrivals(server)) >= 15


def test_tokens_per_sec_holds_the_limit_from_the_start(openai_env: None, log_dir: Path) -> None:
    """Every reply uses 100 tokens while the static guess (input + 256 output) is 2.6 times that:
    the limiter learns the real cost from the first replies instead of running at a fraction of
    the limit, and never lets more than the limit plus one request's tokens through in a second."""
    def hundred_tokens(request: Request) -> Reply:
        content = request.json()["messages"][-1]["content"]
        return Reply(body=completion(content.split("ANSWER:")[-1].strip(), prompt_tokens=90, completion_tokens=10))

    with RecordingServer(hundred_tokens) as server:
        [log] = eval(qa_task(40), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     tokens_per_sec=1000, max_connections=64, log_dir=log_dir, display="none")
    assert log.status == "success"
    arrivals = sorted(r.arrived for r in server.requests)
    assert busiest_window([(moment, 100.0) for moment in arrivals]) <= 1000 + 100
    assert sum(1 for moment in arrivals if moment - arrivals[0] < 2.0) >= 14  # >= 70% of the limit from the start


def test_tokens_per_sec_limit_shared_across_models(openai_env: None, log_dir: Path) -> None:
    """Two models on one endpoint share one token limit."""
    def hundred_tokens(request: Request) -> Reply:
        return Reply(body=completion("x", prompt_tokens=90, completion_tokens=10))

    with RecordingServer(hundred_tokens) as server:
        base = {"tasks": qa_task(12), "log_dir": log_dir, "display": "none", "tokens_per_sec": 1000}
        logs = run_concurrently(
            {**base, "model": "openai/gpt-a", "model_args": {"base_url": f"{server.url}/v1"}},
            {**base, "model": "openai/gpt-b", "model_args": {"base_url": f"{server.url}/v1"}},
        )
    assert len(logs) == 2 and len(server.requests) == 24
    assert busiest_window([(moment, 100.0) for moment, _ in request_arrivals(server)]) <= 1000 + 100


def test_transient_errors_are_retried_and_logged(openai_env: None, log_dir: Path) -> None:
    failures = {"q1 ANSWER: 1": [Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})],
                "q2 ANSWER: 2": [Reply(500, {"error": {"message": "oops"}}), Reply(503, "busy", {"Retry-After": "0"})],
                "q3 ANSWER: 3": [Reply(drop=True)]}
    lock = threading.Lock()

    def flaky(request: Request) -> Reply:
        prompt = request.json()["messages"][-1]["content"]
        with lock:
            queue = failures.get(prompt)
            if queue:
                return queue.pop(0)
        return answer(request)

    with RecordingServer(flaky) as server:
        [log] = eval(qa_task(5), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     log_dir=log_dir, display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    retries = {s.id: len(s.retries or []) for s in log.samples}
    assert retries == {1: 0, 2: 1, 3: 2, 4: 1, 5: 0}
    assert log.footer["retries"] == 4 and len(server.requests) == 9
    assert "RateLimitError" in next(s for s in log.samples if s.id == 2).retries[0]["error"]


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply(400, {"error": {"message": "bad field"}}), "request rejected (HTTP 400): bad field"),
    (Reply(401, {"error": {"message": "invalid key"}}), "authentication failed (HTTP 401); check OPENAI_API_KEY"),
    (Reply(404, {"error": {"message": "no such model"}}), "not found (HTTP 404)"),
    (Reply(200, "<html>gateway</html>", {"Content-Type": "text/html"}), "not a JSON object"),
    (Reply(200, ""), "not a JSON object"),
])
def test_permanent_errors_are_not_retried(openai_env: None, log_dir: Path, reply: Reply, expected: str) -> None:
    with RecordingServer(lambda request: reply) as server:
        [log] = eval(qa_task(1), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     log_dir=log_dir, display="none")
    assert log.status == "error" and expected in log.samples[0].error
    assert len(server.requests) == 1


@pytest.fixture
def held() -> Iterator[threading.Event]:
    """Set when the test ends: a silent server's handlers wait on it instead of answering."""
    release = threading.Event()
    yield release
    release.set()


def test_attempt_timeout_is_retried_then_gives_up(openai_env: None, log_dir: Path, held: threading.Event) -> None:
    with RecordingServer(lambda request: Reply(body=completion("late")) if held.wait(10) else Reply()) as server:
        [log] = eval(qa_task(1), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     attempt_timeout=0.2, max_retries=2, log_dir=log_dir, display="none")
    error = log.samples[0].error
    assert log.status == "error" and "RequestTimeoutError: openai/gpt-test: no reply within 0.2 s (attempt_timeout" in error
    assert len(log.samples[0].retries) == 2 and len(server.requests) == 3


def test_timeout_bounds_the_whole_request_including_retry_after(openai_env: None, log_dir: Path) -> None:
    """A server that always answers 429 with Retry-After: 1 under --timeout 2.5: attempts at 0,
    1 and 2 s, then the request gives up at once since the next wait would pass its timeout."""
    rate_limited = Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"})
    with RecordingServer(lambda request: rate_limited) as server:
        [log] = eval(qa_task(1), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     timeout=2.5, max_retries=20, log_dir=log_dir, display="none")
    [sample] = log.samples
    assert "gave up after 3 attempts: the request's timeout of 2.5 s leaves" in sample.error
    assert "less than the 1.0 s wait the server asked for; last error: RateLimitError" in sample.error
    assert len(server.requests) == 3 and [event["wait"] for event in sample.retries] == [1.0, 1.0]


SILENT_SERVER_PROVIDERS = {
    "openai": ("openai/gpt-test", {"OPENAI_API_KEY": KEY}, lambda url: {"base_url": f"{url}/v1"}),
    "anthropic": ("anthropic/claude-test", {"ANTHROPIC_API_KEY": KEY}, lambda url: {"base_url": url}),
    "azureml": ("azureml/default", {"AZUREML_API_KEY": KEY}, lambda url: {"base_url": f"{url}/score"}),
    "transform": ("transform/acme", {}, lambda url: {"spec": {
        "base_url": url, "openai_to_custom_request": {"prompt": "messages[-1].content"},
        "custom_to_openai_response": {"choices": "[{message: {role: 'assistant', content: text}}]"}}}),
    "google": ("google/gemini-test", {"GOOGLE_API_KEY": KEY}, lambda url: {"base_url": url}),
    "bedrock": ("bedrock/test-model", {}, lambda url: {"base_url": url}),
    "sagemaker": ("sagemaker/test-endpoint", {}, lambda url: {"base_url": url}),
}


@pytest.mark.parametrize("provider", SILENT_SERVER_PROVIDERS)
def test_every_provider_gives_up_on_a_silent_server(
    provider: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, held: threading.Event
) -> None:
    """A server that accepts the request and never answers costs each attempt its
    attempt_timeout, whatever the provider and its SDK's own timeouts."""
    model, env, args = SILENT_SERVER_PROVIDERS[provider]
    isolate_env(monkeypatch, tmp_path, unset=("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_BASE_URL"), **env)
    set_fake_aws_env(monkeypatch, "us-east-1")
    with RecordingServer(lambda request: Reply() if held.wait(30) else Reply()) as server:
        started = time.monotonic()
        [log] = eval(qa_task(1), model=model, model_args=args(server.url), attempt_timeout=1, max_retries=1,
                     log_dir=tmp_path / "logs", display="none")
        elapsed = time.monotonic() - started
    [sample] = log.samples
    timed_out = f"RequestTimeoutError: {model}: no reply within 1 s (attempt_timeout"
    assert sample.error.startswith(timed_out) and [event["error"][:len(timed_out)] for event in sample.retries] == [timed_out]
    assert len(server.requests) >= 1 and elapsed < 15  # two attempts of 1 s and one backoff of at most 1 s


def test_refused_connection_is_reported_as_such(tmp_path: Path) -> None:
    """Nothing listens on the port: the sample error, the retry records and the CLI's reason
    say "connection refused to http://127.0.0.1:PORT", never "timed out"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it after the block
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\n@task\ndef t():\n    return Task(dataset=[Sample(input='hi')])\n")
    result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "--max-retries", "1", "--log-dir", "logs",
                     "--display", "plain", cwd=tmp_path,
                     env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert result.returncode == 1
    [sample] = read_eval_log(next((tmp_path / "logs").glob("*.jsonl"))).samples
    expected = f"ConnectionRefused: connection refused to http://127.0.0.1:{port}: is the server running there?"
    assert sample.error.startswith(expected) and sample.retries[0]["error"].startswith(expected)
    assert expected in result.stderr
    assert "timed out" not in (sample.error + result.stderr).lower()


def test_waiting_on_a_rate_limit_is_shown(tmp_path: Path) -> None:
    """While a sample waits out a 429's Retry-After, the progress line says so."""
    replies = [Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})] * 2
    lock = threading.Lock()

    def limited(request: Request) -> Reply:
        with lock:
            return replies.pop() if replies else answer(request)

    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\n@task\ndef t():\n    return Task(dataset=[Sample(input='ANSWER: 1')])\n")
    with RecordingServer(limited) as server:
        result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "--log-dir", "logs", "--display", "plain",
                         cwd=tmp_path, env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"})
    assert result.returncode == 0, result.stderr
    assert "0/1 samples" in result.stderr and "1 waiting on rate limit" in result.stderr
    assert "1/1 samples" in result.stderr.splitlines()[-1] or "2 retries" in result.stderr


def test_fault_injection_every_sample_completes(openai_env: None, log_dir: Path) -> None:
    rng = random.Random(0)
    lock = threading.Lock()

    def unreliable(request: Request) -> Reply:
        with lock:
            roll = rng.random()
        if roll < 0.1:
            return Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
        if roll < 0.2:
            return Reply(500, {"error": {"message": "internal"}})
        return answer(request)

    with RecordingServer(unreliable) as server:
        [log] = eval(qa_task(300), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     max_connections=32, max_retries=10, log_dir=log_dir, display="none")
    assert log.status == "success" and log.footer["counts"]["completed"] == 300
    assert log.results["match"]["accuracy"] == 1.0
    assert log.footer["retries"] == len(server.requests) - 300 > 30


def test_kill_then_retry_never_repeats_a_finished_request(tmp_path: Path) -> None:
    rows = [{"input": f"q{i} ANSWER: {i}", "target": str(i)} for i in range(200)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, json_dataset\nfrom evalkit.scorer import match\n"
        "@task\ndef t():\n    return Task(dataset=json_dataset('data.jsonl'), scorer=match())\n")

    def slow_answer(request: Request) -> Reply:
        time.sleep(0.02)
        return answer(request)

    with RecordingServer(slow_answer) as server:
        env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"}
        process = subprocess.Popen([sys.executable, "-m", "evalkit", "eval", "t.py", "--model", "openai/gpt-test",
                                    "--max-connections", "8", "--log-dir", "logs", "--display", "none"],
                                   cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 60:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        [path] = (tmp_path / "logs").glob("*.jsonl")
        finished = {s.input for s in read_eval_log(path).samples}
        assert 40 <= len(finished) < 200
        seen_before = len(server.requests)
        result = subprocess.run([sys.executable, "-m", "evalkit", "eval-retry", str(path), "--display", "none"],
                                cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    retried = [r.json()["messages"][-1]["content"] for r in server.requests[seen_before:]]
    assert not finished & set(retried)  # nothing finished before the kill was asked again
    log = read_eval_log(path)
    assert len(log.samples) == len({s.id for s in log.samples}) == 200
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0


def test_api_key_never_reaches_any_output(tmp_path: Path) -> None:
    def leaky(request: Request) -> Reply:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return Reply(401, {"error": {"message": f"Incorrect API key provided: {key}"}})

    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\n@task\ndef t():\n    return Task(dataset=[Sample(input='hi')])\n")
    with RecordingServer(leaky) as server:
        result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "--log-dir", "logs", "--display", "plain",
                         cwd=tmp_path, env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"})
        retried = run_cli("eval-retry", str(next((tmp_path / "logs").glob("*.jsonl"))), cwd=tmp_path,
                          env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"})
        status = run_cli("providers", "status", "openai", "--check", "openai/gpt-test", cwd=tmp_path,
                         env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"})
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    outputs = [result.stdout, result.stderr, retried.stdout, retried.stderr, status.stdout, status.stderr]
    outputs += [p.read_text() for p in (tmp_path / "logs").glob("*")]
    assert "authentication failed (HTTP 401)" in result.stderr
    assert "OPENAI_API_KEY (environment)" in status.stdout and "failed" in status.stdout
    assert all(KEY not in text for text in outputs)
