"""A user's mistakes become sample errors or one pair's error log; the rest of the work finishes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.errors import ArgumentError
from evalkit.scorer import Epochs, SampleScore, Score, Target, match, mean, metric, scorer
from evalkit.solver import Generate, TaskState, generate, prompt_template, solver

from tests.conftest import run_cli


def samples(n: int) -> list[Sample]:
    return [Sample(input=f"Q{i} ANSWER: {i}", target=str(i), id=i) for i in range(1, n + 1)]


@solver
def forgetful() -> Any:
    """Forgets `return state` on sample 2."""

    async def solve(state: TaskState, generate: Generate) -> Any:
        state = await generate(state)
        if state.sample_id != 2:
            return state

    return solve


def test_solver_that_forgets_return_state_fails_only_its_sample(log_dir: Path) -> None:
    [log] = eval(Task(dataset=samples(4), solver=forgetful(), scorer=match()), model="mockllm/x",
                 log_dir=log_dir, display="none", fail_on_error=False)
    errors = {s.id: s.error for s in read_eval_log(log.location).samples if s.error}
    assert list(errors) == [2] and "solver 'forgetful' returned NoneType" in errors[2]
    assert log.footer["counts"] == {"total": 4, "completed": 3, "errors": 1}
    assert log.results["match"]["accuracy"] == 1.0


@solver
def odd_metadata() -> Any:
    """Puts a non-string key in the state's metadata on sample 3."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if state.sample_id == 3:
            state.metadata[7] = "seven"
        return await generate(state)

    return solve


def test_non_string_metadata_key_is_a_sample_error(log_dir: Path) -> None:
    [log] = eval(Task(dataset=samples(4), solver=odd_metadata(), scorer=match()), model="mockllm/x",
                 log_dir=log_dir, display="none", fail_on_error=False)
    records = read_eval_log(log.location).samples
    assert len(records) == 4
    [bad] = [s for s in records if s.error]
    assert bad.id == 3 and "state_metadata: key 7 is not a string" in bad.error and not bad.scores


@scorer(metrics=[mean()])
def numpy_scorer() -> Any:
    """Scores with numpy values and puts a numpy array in the metadata."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(np.float64(0.5), metadata={"logits": np.arange(3, dtype=np.float32), "n": np.int64(4)})

    return score


def test_numpy_scores_and_metadata_are_written_as_numbers_and_retry_reads_them(log_dir: Path) -> None:
    [log] = eval(Task(dataset=samples(3), scorer=numpy_scorer()), model="mockllm/x", log_dir=log_dir, display="none")
    assert log.status == "success" and log.results["numpy_scorer"]["mean"] == 0.5
    text = log.location.read_text()
    assert "np." not in text and '"logits":[0.0,1.0,2.0]' in text and '"value":0.5' in text
    assert read_eval_log(log.location).samples[0].scores["numpy_scorer"]["metadata"]["n"] == 4


@scorer(metrics=[mean()])
def verdict_words() -> Any:
    """Gives a word that no number stands for on sample 2, "C" otherwise."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score("maybe" if state.sample_id == 2 else "C")

    return score


def test_string_scores_a_reducer_cannot_reduce_are_sample_errors(log_dir: Path) -> None:
    @metric
    def count() -> Any:
        return lambda scores: len(scores)

    task = Task(dataset=samples(3), scorer=verdict_words(), metrics=[count()], epochs=Epochs(2, "mean"))
    [log] = eval(task, model="mockllm/x", log_dir=log_dir, display="none", fail_on_error=False)
    errors = [s for s in read_eval_log(log.location).samples if s.error]
    assert {s.id for s in errors} == {2} and len(errors) == 2 and "'maybe'" in errors[0].error
    assert log.results["verdict_words"]["count"] == 2


@scorer(metrics=[mean()])
def always_maybe() -> Any:
    """Gives a word no metric can read, on every sample."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score("maybe")

    return score


def test_one_crashing_pair_does_not_stop_the_others(log_dir: Path) -> None:
    @metric
    def explodes() -> Any:
        def compute(scores: list[SampleScore]) -> float:
            if len(scores) > 1:
                raise RuntimeError("metric bug")
            return 0.0

        return compute

    broken_metric = Task(dataset=samples(3), scorer=match(), metrics=[explodes(), mean()], name="broken_metric")
    wrong_values = Task(dataset=samples(1000), scorer=always_maybe(), name="wrong_values")
    fine = Task(dataset=samples(3), scorer=match(), name="fine")
    logs = eval([broken_metric, wrong_values, fine], model=["mockllm/a", "mockllm/b"], log_dir=log_dir,
                display="none", model_args={"outputs": ["2"]})
    assert [(log.task, log.model, log.status) for log in logs] == [
        ("broken_metric", "mockllm/a", "error"), ("broken_metric", "mockllm/b", "error"),
        ("wrong_values", "mockllm/a", "error"), ("wrong_values", "mockllm/b", "error"),
        ("fine", "mockllm/a", "success"), ("fine", "mockllm/b", "success"),
    ]
    assert "metric bug" in logs[0].error and logs[0].results["match"] == {"explodes": None, "mean": pytest.approx(1 / 3)}
    assert len(read_eval_log(logs[0].location).samples) == 3  # the scores are kept
    assert "'maybe'" in logs[2].error and len(read_eval_log(logs[2].location).samples) < 1000  # stopped early


def test_a_metric_that_needs_several_samples_is_not_refused_per_sample(log_dir: Path) -> None:
    import statistics

    @metric
    def spread() -> Any:
        return lambda scores: statistics.stdev(s.score.as_float() for s in scores)

    [log] = eval(Task(dataset=samples(4), scorer=match(), metrics=[spread()]), model="mockllm/x",
                 model_args={"outputs": ["1", "2"]}, log_dir=log_dir, display="none")
    assert log.status == "success" and log.results["match"]["spread"] == pytest.approx(statistics.stdev([1, 1, 0, 0]))


def test_a_bad_value_drops_only_its_own_scorer(log_dir: Path) -> None:
    task = Task(dataset=samples(3), scorer=[match(), verdict_words()], epochs=Epochs(2, "mean"))
    [log] = eval(task, model="mockllm/x", log_dir=log_dir, display="none", fail_on_error=False)
    bad = [s for s in read_eval_log(log.location).samples if s.error]
    assert {s.id for s in bad} == {2} and all(list(s.scores) == ["match"] for s in bad)


@solver
def shuffle_in_place() -> Any:
    """Shuffles the state's choices in place, as a careless solver might."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        assert state.choices == ["a", "b", "c", "d"], "a previous epoch's shuffle leaked"
        random.Random(state.epoch).shuffle(state.choices)
        state.metadata["order"] = list(state.choices)
        return await generate(state)

    return solve


def test_choices_are_copied_per_sample_and_epoch(log_dir: Path) -> None:
    dataset = [Sample(input="ANSWER: A", target="A", choices=["a", "b", "c", "d"])]
    [log] = eval(Task(dataset=dataset, solver=shuffle_in_place(), scorer=match(), epochs=3), model="mockllm/x",
                 log_dir=log_dir, display="none")
    assert log.status == "success" and dataset[0].choices == ["a", "b", "c", "d"]
    assert len({tuple(s.state_metadata["order"]) for s in read_eval_log(log.location).samples}) > 1


def test_eval_works_inside_a_running_event_loop(log_dir: Path) -> None:
    async def notebook_cell() -> Any:
        return eval(Task(dataset=samples(2), scorer=match()), model="mockllm/x", log_dir=log_dir, display="none")

    [log] = asyncio.run(notebook_cell())
    assert log.status == "success"


def test_eval_retry_async(log_dir: Path) -> None:
    from evalkit import eval_retry_async

    task = Task(dataset=samples(4), scorer=match(), name="flaky")
    [log] = eval(task, model="mockllm/x", model_args={"error_on": "Q3"}, log_dir=log_dir, display="none", fail_on_error=False)
    assert log.status == "success" and log.footer["counts"]["errors"] == 1
    retried = asyncio.run(eval_retry_async(log.location, task=task, model_args={"error_on": None}, display="none"))
    assert retried.status == "success" and retried.footer["counts"] == {"total": 4, "completed": 4, "errors": 0}


def test_task_args_for_a_built_task_are_refused(log_dir: Path) -> None:
    with pytest.raises(ArgumentError, match="task_args"):
        eval(Task(dataset=samples(1)), model="mockllm/x", task_args={"n": 3}, log_dir=log_dir, display="none")


def test_prompt_template_keeps_json_braces(log_dir: Path) -> None:
    template = 'Reply as JSON like {"answer": "..."} to: {prompt} ({level})'
    task = Task(dataset=[Sample(input="Q", metadata={"level": "easy"})], solver=[prompt_template(template), generate()])
    [log] = eval(task, model="mockllm/x", log_dir=log_dir, display="none")
    assert read_eval_log(log.location).samples[0].messages[0]["content"] == 'Reply as JSON like {"answer": "..."} to: Q (easy)'


@pytest.mark.parametrize(("dataset", "limit", "reason"), [
    ([], None, "is empty"),
    (samples(5), "10-20", "selects no samples"),
])
def test_no_samples_is_not_success(log_dir: Path, capsys: Any, dataset: list[Sample], limit: str | None, reason: str) -> None:
    [log] = eval(Task(dataset=dataset, name="t"), model="mockllm/x", limit=limit, log_dir=log_dir, display="none")
    assert log.status == "error" and reason in log.error
    assert "warning:" in capsys.readouterr().err


def test_every_sample_failing_is_not_success(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\nfrom evalkit.scorer import match\n"
        "@task\ndef t():\n    return Task(dataset=[Sample(input=f'boom {i}', target='x') for i in range(3)], scorer=match())\n")
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "-M", "error_on=boom", "--fail-on-error", "false",
                     "--display", "none", "--log-dir", "logs", cwd=tmp_path)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "every sample failed (3 of 3)" in line
    assert read_eval_log(next((tmp_path / "logs").glob("*.jsonl"))).status == "error"


def test_resumed_footer_keeps_earlier_retries_and_duration(log_dir: Path) -> None:
    task = Task(dataset=samples(5), scorer=match(), name="slow")
    [log] = eval(task, model="mockllm/x", model_args={"error_on": "Q5", "latency": 0.1}, log_dir=log_dir,
                 display="none", max_samples=1, fail_on_error=False)
    lines = log.location.read_text().splitlines()
    footer = read_eval_log(log.location).footer
    lines[-1] = lines[-1].replace('"retries":0', '"retries":7')
    log.location.write_text("\n".join(lines) + "\n")
    from evalkit import eval_retry

    retried = eval_retry(log.location, task=task, model_args={"error_on": None}, display="none")
    assert retried.footer["retries"] == 7
    assert retried.footer["duration"] >= footer["duration"] >= 0.4


def test_empty_model_name_is_refused_from_python(log_dir: Path) -> None:
    with pytest.raises(ArgumentError, match="model is empty"):
        eval(Task(dataset=samples(1)), model=" ", log_dir=log_dir, display="none")


def test_weights_that_cannot_be_hashed_only_warn(log_dir: Path, capsys: Any) -> None:
    from evalkit import Model, ModelAPI, ModelOutput

    class Unreadable(ModelAPI):
        def weights(self) -> dict[str, str] | None:
            raise PermissionError("weights.safetensors: permission denied")

        async def generate(self, messages: Any, config: Any) -> ModelOutput:
            return ModelOutput.from_text("local", "1")

    [log] = eval(Task(dataset=samples(1), scorer=match()), model=Model("local/x", Unreadable("x")), log_dir=log_dir, display="none")
    assert log.status == "success" and "weights" not in read_eval_log(log.location).header
    assert "warning: could not hash the weights of local/x: PermissionError" in capsys.readouterr().err
