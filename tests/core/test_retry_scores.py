"""eval-retry keeps only what each scorer's metrics need of the samples already finished; its
results still equal a fresh run's for every kind of metric, with epochs, and any sample ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit import Epochs, Sample, Task, eval, read_eval_log
from evalkit.runner import eval_retry
from evalkit.scorer import (
    CORRECT,
    INCORRECT,
    SampleScore,
    Score,
    Target,
    accuracy,
    bootstrap_stderr,
    grouped,
    mean,
    metric,
    scorer,
    std,
    stderr,
    var,
)
from evalkit.solver import TaskState

IDS: list[int | str] = ["a", 0, 7, 2**40, -3, "b-2", 9, 10, 11, 12, 13, 14]
FAILING = {"a", 0, 2**40, -3, "b-2", 12}
"""Samples that error in the first run (one of each kind of id), so the retry runs them."""


@scorer(metrics=[accuracy(), stderr(), bootstrap_stderr(num_samples=50)])
def verdict() -> Any:
    """C when the reply is the target; built-in metrics that read only values."""

    async def score(state: TaskState, target: Target) -> Score:
        reply = state.output.completion
        return Score(CORRECT if reply == target.text else INCORRECT, answer=reply)

    return score


@scorer(metrics=[{"length": [mean(), var(), std()]}, mean()])
def rubric() -> Any:
    """A dict value with per-key metrics (built-ins again)."""

    async def score(state: TaskState, target: Target) -> Score:
        reply = state.output.completion
        return Score({"length": len(reply), "right": reply == target.text})

    return score


@metric
def answered() -> Any:
    """A user metric reading more than values: every sample's id and answer."""

    def compute(scores: list[SampleScore]) -> str:
        return " ".join(sorted(f"{s.sample_id}={s.score.answer}" for s in scores))

    return compute


@scorer(metrics=[grouped(accuracy(), "topic"), answered()])
def topical() -> Any:
    """The same verdict, for metrics that need each sample's metadata, id and answer."""

    async def score(state: TaskState, target: Target) -> Score:
        reply = state.output.completion
        return Score(CORRECT if reply == target.text else INCORRECT, answer=reply)

    return score


@scorer(metrics=[grouped(mean(), "flag"), grouped(accuracy(), "topic", all="groups")])
def flagged() -> Any:
    """The same verdict, for built-in metrics grouped by metadata (kept apart from the values)."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(CORRECT if state.output.completion == target.text else INCORRECT)

    return score


def numbers_task(epochs: int) -> Task:
    samples = [Sample(input=f"q{i} {'FAIL ' if i in FAILING else ''}ANSWER: {n if n % 3 else 'x'}", target=str(n),
                      id=i, metadata={"topic": "odd" if n % 2 else "even", "flag": [None, 1, True][n % 3]})
               for n, i in enumerate(IDS, 1)]
    return Task(dataset=samples, scorer=[verdict(), rubric(), topical(), flagged()], epochs=Epochs(epochs, ["mean", "max"]), name="numbers")


@pytest.mark.parametrize("epochs", [1, 2])
def test_retry_results_equal_a_fresh_run(tmp_path: Path, epochs: int) -> None:
    [first] = eval(numbers_task(epochs), model="mockllm/m", model_args={"error_on": "FAIL"}, fail_on_error=False,
                   display="none", max_samples=1, log_dir=tmp_path / "retried")
    assert first.footer["counts"]["errors"] == len(FAILING) * epochs
    finished_before = {(s.id, s.epoch): s.time for s in read_eval_log(first.location).samples if s.error is None}

    retried = eval_retry(first.location, task=numbers_task(epochs), model_args={"error_on": "never-matches"}, display="none")
    [fresh] = eval(numbers_task(epochs), model="mockllm/m", display="none", max_samples=1, log_dir=tmp_path / "fresh")

    assert retried.status == fresh.status == "success"
    assert without_bootstrap(retried.results) == without_bootstrap(fresh.results)
    assert retried.footer["counts"] == fresh.footer["counts"] == {"total": 12 * epochs, "completed": 12 * epochs, "errors": 0}
    samples = read_eval_log(retried.location).samples
    keys = [(s.id, s.epoch) for s in samples]
    assert sorted(keys, key=str) == sorted(((i, e) for i in IDS for e in range(1, epochs + 1)), key=str)
    assert {k: s.time for k, s in zip(keys, samples) if k[0] not in FAILING} == finished_before  # not run again
    label = "verdict:mean" if epochs > 1 else "verdict"
    assert retried.results[label]["accuracy"] == pytest.approx(8 / 12)  # every third sample answers x
    if epochs == 1:  # resamples depend on the order, which is the log's: the retried samples come last
        values = [SampleScore(Score(s.scores["verdict"]["value"])) for s in samples]
        assert retried.results["verdict"]["bootstrap_stderr"] == bootstrap_stderr(num_samples=50)(values)
    flagged_label = "flagged:max" if epochs > 1 else "flagged"
    assert retried.results[flagged_label]["mean"] == {"1": 1.0, "None": 0.0, "True": 1.0, "all": 8 / 12}
    topical_label = "topical:max" if epochs > 1 else "topical"
    assert retried.results[topical_label]["answered"].split() == sorted(
        f"{i}={n if n % 3 else 'x'}" for n, i in enumerate(IDS, 1))


def without_bootstrap(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {k: v for k, v in values.items() if k != "bootstrap_stderr"} for name, values in results.items()}


@scorer(metrics=[mean()])
def uneven() -> Any:
    """A dict value whose key 'b' one sample lacks."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score({"a": 1} if "q5 " in state.input_text else {"a": 1, "b": 2})

    return score


def uneven_task() -> Task:
    samples = [Sample(input=f"q{i} {'FAIL ' if i == 3 else ''}ANSWER: y", target="y", id=i) for i in range(1, 9)]
    return Task(dataset=samples, scorer=uneven(), name="uneven")


def test_retry_names_the_sample_a_per_key_metric_cannot_read(tmp_path: Path) -> None:
    [first] = eval(uneven_task(), model="mockllm/m", model_args={"error_on": "FAIL"}, fail_on_error=False,
                   display="none", max_samples=1, log_dir=tmp_path)
    retried = eval_retry(first.location, task=uneven_task(), model_args={"error_on": "never-matches"}, display="none")
    assert retried.status == "error"
    assert "metric 'mean' of 'uneven/b' failed" in retried.error and "sample 5: score has no key 'b'" in retried.error
    assert retried.results == {"uneven/a": {"mean": 1.0}, "uneven/b": {"mean": None}}
