"""eval-retry resumes only the same task, and runs exactly the (sample, epoch) pairs missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import read_eval_log

from tests.conftest import run_cli

TASK = """
from evalkit import task, Task, Sample
from evalkit.scorer import match, Epochs
from evalkit.solver import generate, system_message

@task
def t():
    return Task(
        dataset=[Sample(input=f"Q{{i}} ANSWER: {{i}}", target=str(i), id=i) for i in range({n})],
        solver=[system_message("{system}"), generate()],
        scorer=match(location="{location}"),
        config={{"temperature": {temperature}}},
        epochs=Epochs({epochs}, "{reducer}"),
    )
"""
BASE = {"n": 4, "system": "Be brief.", "location": "end", "temperature": 0.0, "epochs": 1, "reducer": "mean"}


def write_task(folder: Path, **changes: object) -> None:
    (folder / "t.py").write_text(TASK.format(**{**BASE, **changes}))


def failed_run(folder: Path) -> Path:
    """A finished run whose sample 3 errored, so eval-retry has work to do."""
    write_task(folder)
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "-M", "error_on=Q3", "--fail-on-error", "false",
                     "--display", "none", "--log-dir", "logs", cwd=folder)
    assert result.returncode == 0, result.stderr
    return next((folder / "logs").glob("*.jsonl"))


@pytest.mark.parametrize(("change", "named"), [
    ({"location": "begin"}, "the scorers or their arguments"),
    ({"system": "Be long."}, "the solvers or their arguments"),
    ({"temperature": 0.7}, "the task's generate config"),
    ({"epochs": 2}, "the task's epochs"),
    ({"reducer": "max"}, "the epoch reducers"),
    ({"n": 5}, "the dataset"),
])
def test_eval_retry_refuses_a_changed_task(tmp_path: Path, change: dict[str, object], named: str) -> None:
    log = failed_run(tmp_path)
    before = log.read_bytes()
    write_task(tmp_path, **change)
    result = run_cli("eval-retry", str(log), "-M", "error_on=none", "--display", "none", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "the task changed since this log was written" in result.stderr and named in result.stderr
    assert log.read_bytes() == before  # nothing was rewritten


def test_eval_retry_accepts_the_same_task(tmp_path: Path) -> None:
    log = failed_run(tmp_path)
    result = run_cli("eval-retry", str(log), "-M", "error_on=none", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_eval_log(log).footer["counts"] == {"total": 4, "completed": 4, "errors": 0}


def test_resume_runs_exactly_the_missing_epoch(tmp_path: Path) -> None:
    write_task(tmp_path, n=3, epochs=2)
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "--display", "none", "--log-dir", "logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = next((tmp_path / "logs").glob("*.jsonl"))
    lines = log.read_text().splitlines()
    kept = [line for line in lines[1:-1] if (json.loads(line)["id"], json.loads(line)["epoch"]) != (2, 2)]
    assert len(kept) == 5
    log.write_text("\n".join([lines[0], *kept]) + "\n")  # as if killed before sample 2's second epoch

    result = run_cli("eval-retry", str(log), "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = log.read_text().splitlines()
    assert after[1:6] == kept
    added = [json.loads(line) for line in after[6:-1]]
    assert [(s["id"], s["epoch"]) for s in added] == [(2, 2)]
    assert read_eval_log(log).results["match"]["accuracy"] == 1.0


def test_infinite_solver_argument_resumes(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\nfrom evalkit.scorer import match\nfrom evalkit.solver import solver\n"
        "@solver\ndef capped(cap: float = float('inf')):\n"
        "    async def solve(state, generate):\n        return await generate(state)\n    return solve\n"
        "@task\ndef t():\n"
        "    return Task(dataset=[Sample(input=f'Q{i} ANSWER: {i}', target=str(i)) for i in range(3)],\n"
        "                solver=capped(), scorer=match())\n")
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "-M", "error_on=Q1", "--fail-on-error", "false",
                     "--display", "none", "--log-dir", "logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = next((tmp_path / "logs").glob("*.jsonl"))
    assert read_eval_log(log).header["solver"] == [{"name": "capped", "args": {"cap": "inf"}}]
    result = run_cli("eval-retry", str(log), "-M", "error_on=none", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_progress_after_resume_counts_earlier_samples_but_not_in_the_rate(tmp_path: Path) -> None:
    log = failed_run(tmp_path)  # samples 0, 1, 2 finished earlier; sample 3 is left to run
    result = run_cli("eval-retry", str(log), "-M", "error_on=none", "-M", "latency=0.5", "--display", "plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = [line for line in result.stderr.splitlines() if "samples/s" in line][-1]
    assert "4/4 samples" in last
    rate = float(last.split(" samples/s")[0].rsplit(" ", 1)[1])
    assert rate <= 2.0  # one sample in >= 0.5 s; counting the three earlier ones would give >= 6
