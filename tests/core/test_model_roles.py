"""Model roles: `get_model(role=...)` inside solvers and scorers, usage per model in the footer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit import Sample, Task, eval, get_model, read_eval_log
from evalkit.errors import EvalkitError
from evalkit.scorer import CORRECT, INCORRECT, Score, Target, scorer
from evalkit.solver import TaskState

from tests.conftest import run_cli


@scorer()
def asks_the_grader() -> Any:
    """Correct when the grader model answers "yes" about the reply."""

    async def score(state: TaskState, target: Target) -> Score:
        grader = get_model(role="grader")
        verdict = await grader.generate(f"Is '{state.output.completion}' right? ANSWER: yes")
        return Score(CORRECT if verdict.completion == "yes" else INCORRECT, explanation=f"{grader.name}: {verdict.completion}")

    return score


def samples(n: int) -> list[Sample]:
    return [Sample(input=f"Q{i} ANSWER: {i}", target=str(i)) for i in range(n)]


def test_role_model_grades_and_its_usage_is_in_the_footer(log_dir: Path) -> None:
    [log] = eval(Task(dataset=samples(3), scorer=asks_the_grader()), model="mockllm/student",
                 model_roles={"grader": "mockllm/judge"}, log_dir=log_dir, display="none")
    assert log.status == "success" and log.results["asks_the_grader"]["accuracy"] == 1.0
    record = read_eval_log(log.location)
    assert {s.scores["asks_the_grader"]["explanation"] for s in record.samples} == {"mockllm/judge: yes"}
    assert record.header["model_roles"] == {"grader": "mockllm/judge"}
    usage = log.footer["usage"]
    assert list(usage) == ["mockllm/student", "mockllm/judge"]
    assert usage["mockllm/judge"]["input_tokens"] > 0 and usage["mockllm/student"]["output_tokens"] == 3


def test_without_the_role_the_evaluated_model_grades(log_dir: Path) -> None:
    [log] = eval(Task(dataset=samples(2), scorer=asks_the_grader()), model="mockllm/student", log_dir=log_dir, display="none")
    assert {s.scores["asks_the_grader"]["explanation"] for s in read_eval_log(log.location).samples} == {"mockllm/student: yes"}
    assert list(log.footer["usage"]) == ["mockllm/student"]
    assert log.footer["usage"]["mockllm/student"]["output_tokens"] == 4  # two answers, two verdicts


def test_get_model_role_outside_an_eval_needs_a_default() -> None:
    with pytest.raises(EvalkitError, match="outside a running eval"):
        get_model(role="grader")
    assert get_model(role="grader", default="mockllm/judge").name == "mockllm/judge"


def test_cli_model_role_and_eval_retry_keep_it(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\nfrom tests.core.test_model_roles import asks_the_grader\n"
        "@task\ndef t():\n    return Task(dataset=[Sample(input=f'Q{i} ANSWER: {i}', target=str(i)) for i in range(3)],\n"
        "                scorer=asks_the_grader())\n")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = run_cli("eval", "t.py", "--model", "mockllm/student", "--model-role", "grader=mockllm/judge", "-M", "error_on=Q1",
                     "--fail-on-error", "false", "--display", "none", "--log-dir", "logs", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    log = next((tmp_path / "logs").glob("*.jsonl"))
    result = run_cli("eval-retry", str(log), "-M", "error_on=none", "--display", "none", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    retried = read_eval_log(log)
    assert retried.footer["counts"]["errors"] == 0
    assert {s.scores["asks_the_grader"]["explanation"] for s in retried.samples} == {"mockllm/judge: yes"}


@pytest.mark.parametrize("role", ["grader", "grader=", "=mockllm/x"])  # grader=nomodel: test_model_aliases
def test_bad_model_role_is_one_line(tmp_path: Path, role: str) -> None:
    (tmp_path / "t.py").write_text("from evalkit import task, Task, Sample\n@task\ndef t():\n    return Task(dataset=[Sample(input='q')])\n")
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "--model-role", role, "--display", "none", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--model-role expects role=provider/model" in result.stderr
