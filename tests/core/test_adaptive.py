"""Adaptive concurrency (`max_connections="auto"`) against a server with a hidden concurrency
cap: no sample lost, 429s seen, concurrency grows past its start. How near the cap it settles
and its throughput against a fixed max_connections are measured by bench/adaptive.py, not here."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.errors import ArgumentError
from evalkit.model.adaptive import BACKOFF, START, AdaptiveLimit
from evalkit.scorer import match
from tests.conftest import run_cli
from tests.servers.capped_server import CappedServer
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply

CAP = 12


def qa_task(n: int) -> Task:
    return Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i)) for i in range(n)], scorer=match(), name="qa")


def test_auto_grows_past_its_start_and_loses_no_sample(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-evalkit-test-adaptive-1")
    with CappedServer(cap=CAP, latency=0.1, retry_after=0.1) as server:
        [log] = eval(qa_task(400), model="openai/gpt-test", model_args={"base_url": f"{server.url}/v1"},
                     max_connections="auto", log_dir=log_dir, display="none")
    record = read_eval_log(log.location)
    assert log.status == "success" and log.footer["counts"]["errors"] == 0
    assert sorted(s.id for s in record.samples) == sorted(range(1, 401)) and log.results["match"]["accuracy"] == 1.0
    assert server.served == 400 and server.refused > 0  # it found the cap by running into it
    assert record.header["config"]["max_connections"] == "auto"
    assert max(active for _, active in server.admitted_at) > START  # grew past its start


def test_limit_grows_on_success_and_backs_off_once_per_window() -> None:
    async def scenario() -> None:
        limit = AdaptiveLimit(start=2, ceiling=4)
        overloaded = lambda error: isinstance(error, TimeoutError)  # noqa: E731
        for _ in range(10):  # slow start until the ceiling
            async with anyio.create_task_group() as group:
                for _ in range(limit.current):
                    group.start_soon(succeed, limit, overloaded)
        assert limit.current == 4 == limit.peak
        sent = [limit.slot(overloaded), limit.slot(overloaded)]  # two requests sent under the same limit
        for slot in sent:
            await slot.__aenter__()
        for slot in sent:  # both time out: the limit shrinks once
            assert await slot.__aexit__(TimeoutError, TimeoutError(), None) is False
        assert limit.limit == pytest.approx(4 * BACKOFF) and not limit.slow_start
        with pytest.raises(ValueError):
            async with limit.slot(overloaded):
                raise ValueError("a bad request is no sign of overload")
        assert limit.limit == pytest.approx(4 * BACKOFF) and limit.in_flight == 0

    async def succeed(limit: AdaptiveLimit, overloaded: object) -> None:
        async with limit.slot(overloaded):  # type: ignore[arg-type]
            await anyio.sleep(0.001)

    anyio.run(scenario)


def test_cli_max_connections_auto_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("from evalkit import task, Task, Sample\n@task\ndef t():\n"
                                   "    return Task(dataset=[Sample(input=str(i)) for i in range(5)])\n")
    done = run_cli("eval", "t.py", "--model", "mockllm/x", "--max-connections", "auto", "--display", "none",
                   "--log-dir", "logs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "logs").iterdir()
    assert read_eval_log(path).header["config"]["max_connections"] == "auto"
    bad = run_cli("eval", "t.py", "--model", "mockllm/x", "--max-connections", "lots", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'lots' is not a whole number" in bad.stderr
    with pytest.raises(ArgumentError, match="max_connections must be"):
        eval(qa_task(1), model="mockllm/x", max_connections="many", log_dir=tmp_path / "logs", display="none")


def test_eval_retry_takes_max_connections_auto(tmp_path: Path) -> None:
    refuse = {"on": True}

    def flaky(request: Request) -> Reply:
        if refuse["on"] and "q1 " in request.body.decode():
            return Reply(400, {"error": {"message": "refused once", "type": "invalid_request_error"}})
        return chat_reply(request)

    (tmp_path / "t.py").write_text("from evalkit import task, Task, Sample\n@task\ndef t():\n"
                                   "    return Task(dataset=[Sample(input=f'q{i} ANSWER: {i}') for i in range(4)])\n")
    env = {"OPENAI_API_KEY": "sk-evalkit-test-adaptive-2"}
    with RecordingServer(flaky) as server:
        run_cli("eval", "t.py", "--model", "openai/gpt-test", "-M", f"base_url={server.url}/v1", "--fail-on-error", "false",
                "--display", "none", "--log-dir", "logs", env=env, cwd=tmp_path)
        [path] = (tmp_path / "logs").iterdir()
        refuse["on"] = False
        retried = run_cli("eval-retry", str(path), "--max-connections", "auto", "--display", "none", env=env, cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert read_eval_log(path).footer["counts"]["errors"] == 0
