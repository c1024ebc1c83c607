"""The CLI end to end in a subprocess: eval, list, log, and bad input giving one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evalkit import read_eval_log
from tests.conftest import REPO, run_cli

TASKS = REPO / "tasks"


def only_log(log_dir: Path) -> Path:
    [path] = log_dir.glob("*.jsonl")
    return path


def test_eval_with_flags_and_log_commands(log_dir: Path) -> None:
    result = run_cli("eval", f"{TASKS}/arithmetic.py", "--model", "mockllm/m", "-T", "n=12", "-T", "seed=3",
                     "-M", "default_output=I think 42", "--max-connections", "4", "--temperature", "0.3",
                     "--max-tokens", "20", "--top-p", "0.9", "--seed", "7", "--epochs", "2", "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    log = read_eval_log(only_log(log_dir))
    assert log.header["config"] == {"temperature": 0.3, "max_tokens": 20, "top_p": 0.9, "seed": 7, "max_connections": 4}
    assert log.header["model_args"] == {"default_output": "I think 42"} and log.header["epochs"] == 2
    assert log.footer["counts"]["total"] == 24
    shown = run_cli("log", "show", str(log.location))
    assert shown.returncode == 0
    assert "task:     arithmetic" in shown.stdout and "status:   success" in shown.stdout and "match:" in shown.stdout
    samples = run_cli("log", "samples", str(log.location))
    assert len(samples.stdout.splitlines()) == 24 and "'I think 42'" in samples.stdout


def test_task_selection_and_model_config(tmp_path: Path, log_dir: Path) -> None:
    config = tmp_path / "model.yaml"
    config.write_text("default_output: from file\nlatency: 0\n")
    result = run_cli("eval", f"{TASKS}/factual_qa.py@factual_qa", "--model", "mockllm/m", "--model-config", str(config),
                     "-M", "latency=0.001", "--limit", "2-4", "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    log = read_eval_log(only_log(log_dir))
    assert log.header["model_args"] == {"default_output": "from file", "latency": 0.001}
    assert sorted(s.id for s in log.samples) == ["qa-2", "qa-3", "qa-4"]


def test_failed_eval_exits_1(tmp_path: Path, log_dir: Path) -> None:
    result = run_cli("eval", f"{TASKS}/factual_qa.py", "--model", "mockllm/m", "-M", "error_on=Japan", "--log-dir", str(log_dir))
    assert result.returncode == 1
    assert "error" in result.stderr and "MockLLMError" in result.stderr


def test_version_and_list() -> None:
    assert run_cli("--version").stdout.startswith("evalkit, version")
    listed = run_cli("list", "providers").stdout
    assert "mockllm" in listed and "hf" in listed
    tasks = run_cli("list", "tasks", str(TASKS / "multiple_choice.py")).stdout
    assert tasks.strip().endswith("multiple_choice.py@general_knowledge")


def test_debug_shows_traceback(log_dir: Path) -> None:
    result = run_cli("eval", str(TASKS / "arithmetic.py"), "--model", "nosuch/x", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_sigkill_leaves_every_finished_sample_readable(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"input": f"q ANSWER: {i}", "target": str(i)}) + "\n" for i in range(2000)))
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, json_dataset\nfrom evalkit.scorer import match\n"
        "@task\ndef t():\n    return Task(dataset=json_dataset('d.jsonl'), scorer=match())\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "eval", "t.py", "--model", "mockllm/m", "-M", "latency=0.05",
         "--max-connections", "20", "--log-dir", "logs", "--display", "none"],
        cwd=tmp_path, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        paths = list((tmp_path / "logs").glob("*.jsonl"))
        if paths and paths[0].read_text().count("\n") > 100:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log = read_eval_log(only_log(tmp_path / "logs"))
    assert log.status == "started" and log.footer is None
    assert 100 <= len(log.samples) < 2000
    assert all(s.scores["match"]["value"] == "C" for s in log.samples)
    assert len({s.id for s in log.samples}) == len(log.samples)
