"""Batch mode end to end: evalkit.eval(..., batch=...) and `evalkit eval --batch` through the
real openai SDK against a local server speaking OpenAI's file + batch protocol, and
eval-retry after a SIGKILL collecting the batches the killed run created."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest

import evalkit
import evalkit.errors
from evalkit import BatchConfig
from evalkit.analysis import evals_df
from tests.conftest import run_cli
from tests.providers.helpers import isolate_env
from tests.servers.batch_server import BatchServer

KEY = "sk-test-batch-0123456789"
FAST = BatchConfig(size=10, tick=0.05, send_delay=0.5)
"""Small batches polled often, so tests take a second."""

TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate, system_message, user_message

@task
def quiz(count: int = {count}, turns: int = 1):
    second = [user_message("Again. ANSWER: {{n}}"), generate()] if turns == 2 else []
    return Task(
        dataset=[Sample(input=f"Question {{i}}. ANSWER: {{i * 3}}", target=str(i * 3), metadata={{"n": i * 3}}, id=i)
                 for i in range(count)],
        solver=[system_message("Answer briefly."), generate(), *second],
        scorer=match(),
    )
'''


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_env(monkeypatch, tmp_path, unset=("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "TOGETHER_BASE_URL"),
                OPENAI_API_KEY=KEY, TOGETHER_API_KEY=KEY)


def task_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "quiz.py"
    path.write_text(TASK.format(count=count))
    return path


def records(log: Path, kind: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
    return [line[kind] for line in lines if kind in line] if kind != "sample" else [
        line for line in lines if not {"header", "footer", "batch"} & set(line)]


def prompts(lines: list[dict[str, Any]]) -> list[str]:
    return [line["body"]["messages"][-1]["content"] for line in lines]


def test_eval_collects_requests_into_batches_and_maps_replies_back(tmp_path: Path) -> None:
    with BatchServer(polls=2) as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 25)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    assert sorted(len(lines) for lines in server.batch_lines.values()) == [5, 10, 10]
    upload = server.requests[0]
    assert (upload.method, upload.path, upload.headers["authorization"]) == ("POST", "/v1/files", f"Bearer {KEY}")
    assert b'name="purpose"\r\n\r\nbatch' in upload.body
    create = next(r for r in server.requests if r.path == "/v1/batches").json()
    tag = create.pop("metadata")["evalkit_submission"]
    assert create == {"input_file_id": create["input_file_id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    assert create["input_file_id"] in server.files and len(tag) == 32
    first = next(iter(server.batch_lines.values()))[0]
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["body"]["model"] == "gpt-4o-mini"
    assert first["body"]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert {r.path.split("/")[-1] for r in server.requests if r.method == "GET" and "/files/" in r.path} == {"content"}
    logged = records(log.location, "batch")
    assert sorted(b["id"] for b in logged) == sorted(server.batch_lines)
    assert all(b["provider"] == "openai" and b["model"] == "gpt-4o-mini" for b in logged)
    assert sorted(i for b in logged for i in b["custom_ids"]) == sorted(server.submissions)
    assert server.duplicates == 0
    reread = evalkit.read_eval_log(log.location)
    assert len(reread.samples) == 25 and {s.output["completion"] for s in reread.samples} == {str(i * 3) for i in range(25)}


def test_cli_batch_size_50(tmp_path: Path) -> None:
    with BatchServer(polls=2) as server:
        result = run_cli("eval", str(task_file(tmp_path, 120)), "--model", "openai/gpt-4o-mini", "-M", f"base_url={server.url}/v1",
                         "--batch", "50", "--log-dir", str(tmp_path / "logs"), "--display", "plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(len(lines) for lines in server.batch_lines.values()) == [20, 50, 50]
    assert "accuracy 1.000" in result.stderr
    assert "batches pending" in result.stderr or "batch pending" in result.stderr
    [log] = (tmp_path / "logs").glob("*.jsonl")
    assert len(records(log, "sample")) == 120 and len(records(log, "batch")) == 3
    assert records(log, "header")[0]["config"]["batch"] == 50


def test_cli_batch_config_file(tmp_path: Path) -> None:
    (tmp_path / "batch.yml").write_text("size: 20\ntick: 0.05\nsend_delay: 0.5\n")
    with BatchServer() as server:
        result = run_cli("eval", str(task_file(tmp_path, 30)), "--model", "openai/gpt-4o-mini", "-M", f"base_url={server.url}/v1",
                         "--batch", "batch.yml", "--log-dir", str(tmp_path / "logs"), "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(len(lines) for lines in server.batch_lines.values()) == [10, 20]
    [log] = (tmp_path / "logs").glob("*.jsonl")
    assert records(log, "header")[0]["config"]["batch"] == {"size": 20, "tick": 0.05, "send_delay": 0.5, "max_batches": None,
                                                            "max_size_mb": None}


def test_together_batches_in_its_own_dialect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with BatchServer(together=True, polls=2, outcomes=("expired",)) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", f"{server.url}/v1")
        [log] = evalkit.eval(str(task_file(tmp_path, 3)), model="together/meta-llama/Llama-3-8b", batch=FAST,
                             log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    upload = server.requests[0]
    assert upload.path == "/v1/files" and b'name="purpose"\r\n\r\nbatch-api' in upload.body
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    expired, *again = server.batch_lines.values()  # EXPIRED: its requests are sent again
    assert [set(line) for line in expired] == [{"custom_id", "body"}] * 3
    assert [line["body"]["model"] for line in expired] == ["meta-llama/Llama-3-8b"] * 3
    assert sorted(prompts(expired)) == sorted(p for lines in again for p in prompts(lines))


def test_request_failing_inside_a_batch_is_retried_or_fails_its_sample(tmp_path: Path) -> None:
    path = tmp_path / "errors.py"
    path.write_text(TASK.format(count=4).replace('f"Question {i}. ANSWER: {i * 3}"',
                                                   '{1: "BATCH_ERROR 500 ", 2: "BATCH_FAIL 400 "}.get(i, "") + f"Question {i}. ANSWER: {i * 3}"'))
    with BatchServer() as server:
        [log] = evalkit.eval(str(path), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none", fail_on_error=False)
    samples = {s.id: s for s in evalkit.read_eval_log(log.location).samples}
    assert samples[1].error is None and samples[1].scores["match"]["value"] == "C"
    assert "HTTP 500" in samples[1].retries[0]["error"]
    assert "request rejected (HTTP 400): scripted 400" in samples[2].error
    sent = [p for lines in server.batch_lines.values() for p in prompts(lines)]
    assert sum("BATCH_ERROR" in p for p in sent) == 2  # once failed, once retried in a later batch
    assert sum("BATCH_FAIL" in p for p in sent) == 1  # a 400 is not retried
    assert samples[0].error is None and samples[3].error is None


def test_expired_batch_is_sent_again_and_failed_batch_fails_its_samples(tmp_path: Path) -> None:
    with BatchServer(outcomes=("expired",)) as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 5)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success"
    first, *later = server.batch_lines.values()
    assert sorted(prompts(first)) == sorted(p for lines in later for p in prompts(lines))  # each sent again once
    with BatchServer(outcomes=("failed",)) as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 5)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none", fail_on_error=False)
    assert log.status == "error" and len(server.batch_lines) == 1
    assert all("failed: scripted failure" in s.error for s in evalkit.read_eval_log(log.location).samples)


def test_provider_without_batch_api_warns_once_and_runs_directly(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [log] = evalkit.eval(str(task_file(tmp_path, 3)), model="mockllm/model", batch=True, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success"
    said = [str(w.message) for w in caught if "batch mode" in str(w.message)]
    assert len(said) == 1 and said[0].endswith("has no batch API: batch mode is ignored and its requests are sent one by one")


def test_bad_batch_values_are_one_line_errors(tmp_path: Path) -> None:
    result = run_cli("eval", str(task_file(tmp_path, 1)), "--model", "mockllm/model", "--batch", "0", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: --batch takes nothing, a batch size above 0 or a YAML/JSON file of BatchConfig fields (got '0'); put the task before --batch"]
    (tmp_path / "batch.yml").write_text("size: 0\n")
    result = run_cli("eval", str(task_file(tmp_path, 1)), "--model", "mockllm/model", "--batch", "batch.yml", cwd=tmp_path)
    assert result.returncode == 2 and "batch size must be a whole number above 0 (got 0)" in result.stderr
    assert "Traceback" not in result.stderr


def _kill_when(process: subprocess.Popen[str], ready: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _start(tmp_path: Path, task: Path, server: BatchServer, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "evalkit", "eval", str(task), "--model", "openai/gpt-4o-mini", "-M", f"base_url={server.url}/v1",
            "--log-dir", str(tmp_path / "logs"), "--display", "none", *extra]
    return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _logged_batches(tmp_path: Path) -> int:
    logs = list((tmp_path / "logs").glob("*.jsonl"))
    return len(records(logs[0], "batch")) if logs else 0


def test_sigkill_mid_batch_then_eval_retry_collects_running_batches(tmp_path: Path) -> None:
    with BatchServer(hold=lambda lines: True) as server:
        process = _start(tmp_path, task_file(tmp_path, 120), server, "--batch", "50")
        _kill_when(process, lambda: _logged_batches(tmp_path) == 3)
        [log] = (tmp_path / "logs").glob("*.jsonl")
        assert records(log, "sample") == [] and evalkit.read_eval_log(log).status == "started"
        assert evals_df(log)["completed_samples"].tolist() == [0]  # batch records are not counted as samples
        created = len(server.batch_lines)
        server.release()
        result = run_cli("eval-retry", str(log), "--display", "plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert created == 3 and len(server.batch_lines) == 3  # eval-retry created no batch
    assert "pending (1 requests)" in result.stderr  # the recorded batches it waits on are shown
    assert server.duplicates == 0 and server.body_duplicates == 0 and sum(server.submissions.values()) == 120
    done = evalkit.read_eval_log(log)
    assert done.status == "success" and len(done.samples) == 120 and done.results["match"]["accuracy"] == 1.0
    assert len(records(log, "batch")) == 3  # kept through the resume's compaction


def test_sigkill_between_turns_collects_the_first_turn_and_the_running_second(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(TASK.format(count=12).replace("turns: int = 1", "turns: int = 2"))
    with BatchServer(hold=lambda lines: "Again" in lines[0]["body"]["messages"][-1]["content"]) as server:
        process = _start(tmp_path, path, server, "--batch", "50")
        _kill_when(process, lambda: _logged_batches(tmp_path) == 2)
        [log] = (tmp_path / "logs").glob("*.jsonl")
        server.release()
        result = run_cli("eval-retry", str(log), "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(server.batch_lines) == 2 and server.duplicates == 0 and server.body_duplicates == 0
    assert sum(server.submissions.values()) == 24
    done = evalkit.read_eval_log(log)
    assert done.status == "success" and done.results["match"]["accuracy"] == 1.0
    assert all(len(s.messages) == 5 for s in done.samples)  # system, user, assistant, user, assistant


def test_eval_retry_submits_again_what_the_log_recorded_as_failed(tmp_path: Path) -> None:
    path = tmp_path / "fail.py"
    path.write_text(TASK.format(count=3).replace('f"Question {i}. ANSWER: {i * 3}"', '"BATCH_ERROR 400 " * (i == 0) + f"Question {i}. ANSWER: {i * 3}"'))
    with BatchServer() as server:
        [log] = evalkit.eval(str(path), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none", fail_on_error=False)
        assert log.footer["counts"]["errors"] == 1
        retried = evalkit.eval_retry(log.location, display="none")
    assert retried.status == "success"
    assert sum("BATCH_ERROR" in p for lines in server.batch_lines.values() for p in prompts(lines)) == 2


def test_batches_split_by_bytes_and_sent_at_once_when_every_sample_waits(tmp_path: Path) -> None:
    with BatchServer() as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 10)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=BatchConfig(size=100, max_size_mb=0.0005, tick=0.05), log_dir=tmp_path / "logs", display="none")
    assert log.status == "success"
    bodies = [[orjson.dumps(line["body"]) for line in lines] for lines in server.batch_lines.values()]
    assert len(bodies) > 2 and all(sum(map(len, each)) <= 500 or len(each) == 1 for each in bodies)
    start = time.monotonic()
    with BatchServer() as server:  # 2 samples at a time: each pair is all that can come, so no send_delay wait
        [log] = evalkit.eval(str(task_file(tmp_path, 6)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=BatchConfig(size=10, send_delay=60, tick=0.05), max_samples=2, log_dir=tmp_path / "logs",
                             display="none")
    assert log.status == "success" and time.monotonic() - start < 30
    assert [len(lines) for lines in server.batch_lines.values()] == [2, 2, 2]


def test_a_damaged_batch_record_is_named_with_its_line(tmp_path: Path) -> None:
    with BatchServer() as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 2)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none")
    lines = log.location.read_bytes().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith(b'{"batch"'))
    lines[number - 1] = b'{"batch": {"id": "batch_9", "custom_ids": "abc"}}'
    log.location.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(evalkit.errors.LogFileError, match=f"line {number}: batch field 'custom_ids' should be a list of strings"):
        evalkit.read_eval_log(log.location)


def _crash_and_retry(tmp_path: Path, task: Path, server: BatchServer, logged: int, *extra: str) -> tuple[Path, int]:
    """Run `task` through the CLI, SIGKILL it once `logged` batches are in its log, release the
    held batches and eval-retry it; the log and how many batches the killed run created."""
    process = _start(tmp_path, task, server, *extra)
    _kill_when(process, lambda: _logged_batches(tmp_path) == logged)
    [log] = (tmp_path / "logs").glob("*.jsonl")
    created = len(server.batch_lines)
    server.release()
    result = run_cli("eval-retry", str(log), "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return log, created


def test_sigkill_while_a_retry_runs_then_eval_retry_waits_on_that_retry(tmp_path: Path) -> None:
    path = tmp_path / "one.py"
    path.write_text(TASK.format(count=2).replace('f"Question {i}. ANSWER: {i * 3}"', 'f"BATCH_ERROR 500 Question {i}. ANSWER: {i * 3}"'))
    with BatchServer(hold=lambda lines: lines is not next(iter(server.batch_lines.values()))) as server:
        log, created = _crash_and_retry(tmp_path, path, server, 2, "--batch", "5")
    assert created == 2 and len(server.batch_lines) == 2  # the 500s' retries were collected, not sent a third time
    assert server.duplicates == 0 and server.body_duplicates == 2  # each body: the 500, then its one retry
    done = evalkit.read_eval_log(log)
    assert done.status == "success" and done.results["match"]["accuracy"] == 1.0


def test_sigkill_with_cache_between_turns_then_eval_retry_collects_the_running_second_turn(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(TASK.format(count=3).replace("turns: int = 1", "turns: int = 2"))
    with BatchServer(hold=lambda lines: "Again" in lines[0]["body"]["messages"][-1]["content"]) as server:
        log, created = _crash_and_retry(tmp_path, path, server, 2, "--batch", "50", "--cache")
    assert created == 2 and len(server.batch_lines) == 2  # turn 1 from the cache, turn 2 from its running batch
    assert server.duplicates == 0 and server.body_duplicates == 0
    done = evalkit.read_eval_log(log)
    assert done.status == "success" and all(len(s.messages) == 5 for s in done.samples)


def test_batch_set_by_the_solver_is_recorded_and_collected_by_eval_retry(tmp_path: Path) -> None:
    path = tmp_path / "solver.py"
    path.write_text(TASK.format(count=6).replace("generate(), *second", "generate(batch=50), *second"))
    with BatchServer(hold=lambda lines: True) as server:
        log, created = _crash_and_retry(tmp_path, path, server, 1)  # no --batch: only the solver's config sets it
    assert created == 1 and len(server.batch_lines) == 1
    assert server.body_duplicates == 0
    assert records(log, "batch")[0]["custom_ids"] == [line["custom_id"] for line in server.batch_lines["batch_2"]]
    assert evalkit.read_eval_log(log).results["match"]["accuracy"] == 1.0


def test_batch_set_on_the_models_config_is_recorded(tmp_path: Path) -> None:
    with BatchServer() as server:
        model = evalkit.get_model("openai/gpt-4o-mini", base_url=f"{server.url}/v1", config=evalkit.GenerateConfig(batch=FAST))
        [log] = evalkit.eval(str(task_file(tmp_path, 3)), model=model, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and len(server.batch_lines) == 1
    [record] = records(log.location, "batch")
    assert sorted(record["custom_ids"]) == sorted(server.submissions) and not record["custom_ids"][0].startswith("x")


def test_batch_polls_failing_for_a_while_keep_the_batch(tmp_path: Path) -> None:
    with BatchServer(fail_polls=12) as server:  # more failures in a row than a create may have
        [log] = evalkit.eval(str(task_file(tmp_path, 3)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    assert len(server.batch_lines) == 1 and server.body_duplicates == 0  # polled again until it ended, never sent again
    assert sum(r.path == "/v1/batches/batch_2" for r in server.requests) >= 13


def test_a_batch_whose_poll_fails_holds_up_no_other_batch(tmp_path: Path) -> None:
    with BatchServer(fail_polls=1, poll_retry_after=3) as server:  # the first poll: 503, Retry-After 3 s
        [log] = evalkit.eval(str(task_file(tmp_path, 4)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=BatchConfig(size=2, tick=0.05, send_delay=0.5), log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and len(server.batch_lines) == 2 and server.body_duplicates == 0
    polls = [(r.arrived, r.path) for r in server.requests if r.path.startswith("/v1/batches/")]
    (failed_at, failed), *later = polls
    again = next(at for at, path in later if path == failed)
    other_done = max(at for at, path in later if path != failed)
    assert again - failed_at >= 2.9 and other_done < again  # the other batch was polled to its end meanwhile


def test_a_create_whose_reply_was_lost_adopts_the_batch_it_made(tmp_path: Path) -> None:
    with BatchServer(lose_creates=1) as server:
        [log] = evalkit.eval(str(task_file(tmp_path, 3)), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=FAST, log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    assert list(server.batch_lines) == ["batch_2"] and server.body_duplicates == 0
    assert [b["id"] for b in records(log.location, "batch")] == ["batch_2"]
    calls = [(r.method, r.path) for r in server.requests if not r.path.startswith("/v1/batches/")]
    assert calls[:3] == [("POST", "/v1/files"), ("POST", "/v1/batches"), ("GET", "/v1/batches?limit=100")]  # one upload, the lookup
    assert ("POST", "/v1/batches") not in calls[2:]


def test_batch_file_errors_are_the_providers_one_line_errors(tmp_path: Path) -> None:
    with BatchServer(together=True) as server:  # refuses OpenAI's purpose=batch with a 400
        result = run_cli("eval", str(task_file(tmp_path, 2)), "--model", "openai/gpt-4o-mini", "-M", f"base_url={server.url}/v1",
                         "--batch", "5", "--display", "plain", "--log-dir", str(tmp_path / "logs"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "openai: request rejected (HTTP 400): expected a file with purpose=batch" in result.stderr
    assert "BadRequestError" not in result.stderr and "Traceback" not in result.stderr


def test_eval_retry_of_a_sample_that_ran_out_of_retries_submits_it_once_more(tmp_path: Path) -> None:
    path = tmp_path / "flaky.py"
    path.write_text(TASK.format(count=2).replace('f"Question {i}. ANSWER: {i * 3}"', '"BATCH_ERROR 500 " * (i == 0) + f"Question {i}. ANSWER: {i * 3}"'))
    with BatchServer() as server:
        [log] = evalkit.eval(str(path), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"}, max_retries=0,
                             batch=FAST, log_dir=tmp_path / "logs", display="none", fail_on_error=False)
        assert log.footer["counts"]["errors"] == 1 and len(server.batch_lines) == 1
        retried = evalkit.eval_retry(log.location, display="none")
    assert retried.status == "success" and retried.results["match"]["accuracy"] == 1.0
    [first, again] = server.batch_lines.values()  # the recorded 500 is passed over: its retry goes in one new batch
    assert [line["custom_id"].split("-")[1] for line in again] == ["1"]  # the retry's own custom_id
    assert server.duplicates == 0 and server.body_duplicates == 1
