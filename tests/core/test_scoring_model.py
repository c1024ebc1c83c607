"""The scoring model through eval(): Score values, decorators and names, metrics, reducers."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.scorer import (
    CORRECT,
    INCORRECT,
    NOANSWER,
    PARTIAL,
    Epochs,
    SampleScore,
    Score,
    Target,
    accuracy,
    at_least,
    bootstrap_stderr,
    grouped,
    includes,
    match,
    mean,
    metric,
    pass_at,
    score_reducer,
    scorer,
    std,
    stderr,
    value_to_float,
    var,
)
from evalkit.solver import Generate, TaskState, generate, solver, system_message


def run(task: Task, outputs: list[str] | None = None, **kwargs: Any) -> Any:
    model_args = {"outputs": outputs} if outputs else {}
    [log] = eval(task, model="mockllm/x", model_args=model_args, display="none", max_samples=1, **kwargs)
    return log


@scorer(metrics=[mean()])
def completion_value() -> Any:
    """Scores each sample with the model's reply read as a JSON-ish value."""

    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion if state.output else ""
        return Score(value=float(text) if text.replace(".", "").isdigit() else text, answer=text)

    return score


def test_value_to_float_follows_inspect() -> None:
    to_float = value_to_float()
    assert [to_float(v) for v in (CORRECT, INCORRECT, PARTIAL, NOANSWER)] == [1.0, 0.0, 0.5, 0.0]
    assert [to_float(v) for v in (True, False, 3, "2.5", "yes", "No", "true")] == [1.0, 0.0, 3.0, 2.5, 1.0, 0.0, 1.0]
    assert value_to_float(correct="Y", incorrect="X")("Y") == 1.0
    with pytest.raises(ValueError, match="banana"):
        to_float("banana")


def test_target_has_text_and_list() -> None:
    target = Target(["4", "four"])
    assert target.text == "4four" and target.target == ["4", "four"] and list(target) == ["4", "four"] and target[1] == "four"
    assert Target("x").target == ["x"]


def test_two_scorers_of_one_kind_keep_both_and_the_header_names_them(tmp_path: Path) -> None:
    task = Task(
        dataset=[Sample(input="ANSWER: Tokyo", target="tokyo"), Sample(input="ANSWER: no", target="Paris")],
        solver=[system_message("Be brief."), generate(temperature=0.5)],
        scorer=[match(), match(location="begin", ignore_case=False), includes()],
    )
    log = run(task, log_dir=tmp_path)
    assert set(log.results) == {"match", "match1", "includes"}
    assert log.results["match"] == {"accuracy": 0.5, "stderr": 0.5}
    assert log.results["match1"]["accuracy"] == 0.0  # case-sensitive: "Tokyo" is not "tokyo"
    header = read_eval_log(log.location).header
    assert header["scorers"][1] == {"name": "match1", "args": {"location": "begin", "ignore_case": False, "numeric": False}}
    assert header["solver"] == [
        {"name": "system_message", "args": {"template": "Be brief."}},
        {"name": "generate", "args": {"temperature": 0.5}},
    ]
    assert header["identity"]["scorers"] == header["scorers"]


def test_builtin_metrics_match_hand_computation(tmp_path: Path) -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    task = Task(
        dataset=[Sample(input=str(i), target="") for i in range(len(values))],
        scorer=completion_value(),
        metrics=[accuracy(), mean(), var(), std(), stderr(), bootstrap_stderr(num_samples=200)],
    )
    log = run(task, [str(v) for v in values], log_dir=tmp_path)
    got = log.results["completion_value"]
    assert got["accuracy"] == got["mean"] == pytest.approx(0.75)
    assert got["var"] == pytest.approx(statistics.variance(values))
    assert got["std"] == pytest.approx(statistics.stdev(values))
    assert got["stderr"] == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)))
    assert 0.05 < got["bootstrap_stderr"] < 0.3


def test_grouped_metric_per_metadata_field(tmp_path: Path) -> None:
    samples = [Sample(input=f"ANSWER: {a}", target="y", metadata={"topic": t}) for a, t in
               [("y", "maths"), ("n", "maths"), ("y", "history"), ("y", "history")]]
    log = run(Task(dataset=samples, scorer=match(), metrics=[grouped(accuracy(), "topic"), stderr()]), log_dir=tmp_path)
    assert log.results["match"]["accuracy"] == {"history": 1.0, "maths": 0.5, "all": 0.75}
    assert "stderr" in log.results["match"]


@scorer(metrics=[mean()])
def rubric() -> Any:
    """A dict-valued score: one value per rubric item."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score({"fluency": len(state.output.completion) % 2, "accuracy": state.output.completion == target.text})

    return score


def test_dict_scores_get_per_key_metrics(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input="ANSWER: ab", target="ab"), Sample(input="ANSWER: abc", target="x")], scorer=rubric())
    log = run(task, log_dir=tmp_path)
    assert log.results == {"rubric/fluency": {"mean": 0.5}, "rubric/accuracy": {"mean": 0.5}}
    per_key = run(Task(dataset=task.dataset, scorer=rubric(), metrics={"fluency": [mean(), stderr()]}), log_dir=tmp_path)
    assert per_key.results == {"rubric/fluency": {"mean": 0.5, "stderr": 0.5}}


@pytest.mark.parametrize(("reducer", "expected"), [
    ("mean", [2 / 3, 1 / 3]),
    ("median", [1.0, 0.0]),
    ("mode", [1.0, 0.0]),
    ("max", [1.0, 1.0]),
    ("min", [0.0, 0.0]),
    ("at_least_2", [1.0, 0.0]),
    ("pass_at_2", [1.0, 2 / 3]),
])
def test_epoch_reducers(tmp_path: Path, reducer: str, expected: list[float]) -> None:
    # sample 1 answers right, wrong, right; sample 2 wrong, right, wrong
    outputs = ["y", "n", "y", "n", "y", "n"]
    task = Task(dataset=[Sample(input="a", target="y", id=1), Sample(input="b", target="y", id=2)],
                scorer=match(), metrics=[mean()], epochs=Epochs(3, reducer))
    log = run(task, outputs, log_dir=tmp_path)
    assert log.results["match"]["mean"] == pytest.approx(sum(expected) / 2)


@score_reducer(name="last")
def last_epoch() -> Any:
    """A user reducer: the last epoch's score."""
    return lambda scores: scores[-1]


def test_user_reducer_and_several_reducers(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input="a", target="y")], scorer=match(), metrics=[mean()],
                epochs=Epochs(3, ["last", pass_at(1), at_least(3)]))
    log = run(task, ["y", "y", "n"], log_dir=tmp_path)
    assert log.results == {"match:last": {"mean": 0.0}, "match:pass_at_1": {"mean": pytest.approx(2 / 3)},
                           "match:at_least_3": {"mean": 0.0}}
    assert read_eval_log(log.location).header["identity"]["reducers"] == ["last", "pass_at_1", "at_least_3"]


@metric
def count_correct() -> Any:
    """A user metric over SampleScore objects."""

    def compute(scores: list[SampleScore]) -> int:
        return sum(s.score.value == CORRECT for s in scores)

    return compute


def test_user_metric_receives_sample_scores(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input=f"ANSWER: {a}", target="y") for a in "yyn"], scorer=match(), metrics=[count_correct()])
    assert run(task, log_dir=tmp_path).results == {"match": {"count_correct": 2}}


def test_values_a_metric_cannot_reduce_fail_on_the_first_sample(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input=str(i), target="") for i in range(50)], scorer=completion_value())
    log = run(task, ["not a number"], log_dir=tmp_path)
    assert log.status == "error"
    assert "completion_value" in log.error and "'not a number'" in log.error and "\n" not in log.error
    assert log.footer["counts"]["total"] == 50 and len(read_eval_log(log.location).samples) < 5


@solver
def note_length() -> Any:
    """Writes the prompt's length into the state's metadata."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.metadata["length"] = len(state.input_text)
        return await generate(state)

    return solve


def test_sample_line_logs_target_metadata_state_metadata_and_reported_model(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input="ANSWER: 4", target=["4", "four"], metadata={"level": 2})], solver=note_length(), scorer=match())
    [sample] = read_eval_log(run(task, log_dir=tmp_path).location).samples
    assert sample.target == ["4", "four"]
    assert sample.metadata == {"level": 2}
    assert sample.state_metadata == {"level": 2, "length": 9}
    assert sample.output["model"] == "mockllm/x"


@scorer(metrics=[mean()])
def shifting_keys() -> Any:
    """A dict score whose keys differ between epochs."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score({f"k{state.epoch}": 1.0})

    return score


def test_epochs_that_cannot_be_combined_are_counted_and_not_success(tmp_path: Path) -> None:
    log = run(Task(dataset=[Sample(input="a"), Sample(input="b")], scorer=shifting_keys(), epochs=2), log_dir=tmp_path)
    assert log.status == "error" and "2 samples could not be reduced across epochs" in log.error
    assert log.footer["counts"] == {"total": 4, "completed": 4, "errors": 0, "unreduced": 2}
