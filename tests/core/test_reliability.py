"""Retries, rate limits, resume and redaction through a real provider (openai SDK) talking HTTP
to a recording server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.scorer import match
from tests.conftest import run_cli
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


def windows_exceeding(times: list[float], limit: float) -> int:
    """The largest count of arrivals in any one-second window, minus the limit."""
    times = sorted(times)
    worst, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        worst = max(worst, end - start + 1)
    return worst - int(limit)


def test_requests_per_sec_caps_every_one_second_window(openai_env: None, log_dir: Path) -> None:
    with RecordingServer(answer) as server:
        [log] = eval(qa_task(45), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     requests_per_sec=15, max_connections=32, log_dir=log_dir, display="none")
    arrivals = [r.arrived for r in server.requests]
    assert log.status == "success" and len(arrivals) == 45
    assert windows_exceeding(arrivals, 15) <= 1
    assert max(arrivals) - min(arrivals) >= 2.5  # 45 requests at 15/s cannot finish sooner


def test_tokens_per_sec_limit_shared_across_models(openai_env: None, log_dir: Path) -> None:
    """Two models on the same endpoint share one token bucket (input estimate + max_tokens)."""
    with RecordingServer(answer) as server:
        args = {"base_url": f"{server.url}/v1", "tokens_per_sec": 300}
        logs = eval([qa_task(12)], model=["openai/gpt-test", "openai/gpt-test"], model_args=args, max_tokens=40,
                    max_connections=32, log_dir=log_dir, display="none")
    assert all(log.status == "success" for log in logs)
    arrivals = sorted(r.arrived for r in server.requests)
    # each request costs about 44 estimated tokens, corrected to the 12 it used: >= ~40 tokens of
    # spacing each at 300 tokens/s, so 24 requests take well over a second
    assert arrivals[-1] - arrivals[0] >= 1.0


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
    assert len(server.requests) == 1 if reply.status != 200 else len(server.requests) >= 1


def test_timeout_is_retried_then_gives_up(openai_env: None, log_dir: Path) -> None:
    def slow(request: Request) -> Reply:
        time.sleep(0.5)
        return answer(request)

    with RecordingServer(slow) as server:
        [log] = eval(qa_task(1), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     timeout=0.1, max_retries=2, log_dir=log_dir, display="none")
    assert log.status == "error" and "TimeoutError" in log.samples[0].error
    assert len(log.samples[0].retries) == 2 and len(server.requests) == 3


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
