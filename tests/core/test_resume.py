"""Crash safety: SIGKILL or Ctrl-C in the middle of an eval, then eval-retry finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit import read_eval_log
from evalkit.runner import eval_retry
from tests.conftest import run_cli, sigint_as_in_a_terminal

TASK = """
from evalkit import task, Task, json_dataset
from evalkit.scorer import match

@task
def numbers(epochs: int = 1):
    return Task(dataset=json_dataset("data.jsonl"), scorer=match(), epochs=epochs)
"""


def make_task_dir(tmp_path: Path, n: int) -> Path:
    # every 3rd answer is wrong so the metric is not trivially 1.0
    rows = [{"input": f"q{i} ANSWER: {i if i % 3 else -1}", "target": str(i)} for i in range(n)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.py").write_text(TASK)
    return tmp_path


def start_eval(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalkit", "eval", "t.py", "--model", "mockllm/m", "-M", "latency=0.02",
         "--max-connections", "10", "--log-dir", "logs", "--display", "none", *args],
        cwd=cwd, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)


def wait_for_lines(log_dir: Path, lines: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        paths = list(log_dir.glob("*.jsonl"))
        if paths and paths[0].read_bytes().count(b"\n") > lines:
            return paths[0]
        time.sleep(0.02)
    raise AssertionError("the eval wrote too few lines")


@pytest.mark.parametrize("epochs", [1, 2])
def test_sigkill_then_eval_retry_completes_exactly_once(tmp_path: Path, epochs: int) -> None:
    cwd = make_task_dir(tmp_path, 300)
    process = start_eval(cwd, "-T", f"epochs={epochs}")
    path = wait_for_lines(cwd / "logs", 80)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = read_eval_log(path)
    assert partial.status == "started" and 80 <= len(partial.samples) < 300 * epochs

    result = run_cli("eval-retry", str(path), "--display", "none", cwd=cwd)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(path)
    assert log.status == "success"
    keys = [(s.id, s.epoch) for s in log.samples]
    assert len(keys) == len(set(keys)) == 300 * epochs
    assert log.footer["counts"] == {"total": 300 * epochs, "completed": 300 * epochs, "errors": 0}

    fresh = run_cli("eval", "t.py", "--model", "mockllm/m", "-T", f"epochs={epochs}", "--log-dir", "fresh", cwd=cwd)
    assert fresh.returncode == 0
    [fresh_path] = (cwd / "fresh").glob("*.jsonl")
    assert log.results == read_eval_log(fresh_path).results
    assert log.results["match"]["accuracy"] == pytest.approx(200 / 300)


def test_ctrl_c_marks_log_cancelled_and_resumable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = make_task_dir(tmp_path, 1000)
    monkeypatch.chdir(cwd)
    process = start_eval(cwd)
    path = wait_for_lines(cwd / "logs", 30)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"resume with: evalkit eval-retry" in stderr and b"Traceback" not in stderr
    log = read_eval_log(path)
    assert log.status == "cancelled" and log.footer["counts"]["completed"] < 1000
    eval_retry(path, display="none")
    log = read_eval_log(path)
    assert log.status == "success" and len({(s.id, s.epoch) for s in log.samples}) == len(log.samples) == 1000
    assert path.read_text().count('"footer"') == 1


def test_retry_reruns_errored_samples_only(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 30)
    failing = run_cli("eval", "t.py", "--model", "mockllm/m", "-M", "error_on=q7 ", "--fail-on-error", "false",
                      "--log-dir", "logs", cwd=cwd)
    assert failing.returncode == 0
    [path] = (cwd / "logs").glob("*.jsonl")
    first = read_eval_log(path)
    assert first.status == "success" and first.footer["counts"]["errors"] == 1
    finished_before = {s.id: s.time for s in first.samples if s.error is None}
    # the failure was transient: retry with a model that no longer fails
    result = run_cli("eval-retry", str(path), "-M", "error_on=never-matches", cwd=cwd)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(path)
    assert log.footer["counts"] == {"total": 30, "completed": 30, "errors": 0}
    assert sorted(s.id for s in log.samples) == list(range(1, 31))
    assert {s.id: s.time for s in log.samples if s.id != 8} == finished_before  # untouched
    again = run_cli("eval-retry", str(path), cwd=cwd)
    assert again.returncode == 2 and "nothing to retry" in again.stderr


def test_retry_after_failure_runs_missing_and_errored(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 30)
    failing = run_cli("eval", "t.py", "--model", "mockllm/m", "-M", "error_on=q7 ", "--max-samples", "1",
                      "--log-dir", "logs", cwd=cwd)
    assert failing.returncode == 1
    [path] = (cwd / "logs").glob("*.jsonl")
    assert read_eval_log(path).status == "error"
    result = run_cli("eval-retry", str(path), "-M", "error_on=never-matches", cwd=cwd)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(path)
    assert log.status == "success" and sorted(s.id for s in log.samples) == list(range(1, 31))
    assert all(s.error is None for s in log.samples)
    assert log.header["model_args"]["error_on"] == "q7 "  # the header keeps the original run's settings
