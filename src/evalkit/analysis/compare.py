"""Compares runs of the same task: metrics side by side and the samples whose scores differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.analysis.rows import score_text
from evalkit.errors import ArgumentError
from evalkit.log.schema import EvalLog

SampleKey = tuple[str, int]
"""A sample's id (as text) and epoch: what identifies it across runs."""

Scores = Mapping[str, Any]


def sample_key(sample_id: Any, epoch: int) -> SampleKey:
    return str(sample_id), int(epoch)


def check_comparable(logs: Sequence[EvalLog]) -> None:
    """Refuse fewer than two runs, or runs of different tasks."""
    if len(logs) < 2:
        raise ArgumentError("compare needs two or more runs")
    tasks = sorted({log.task for log in logs})
    if len(tasks) > 1:
        raise ArgumentError(f"cannot compare runs of different tasks ({', '.join(tasks)}); pick runs of one task")


def metric_table(logs: Sequence[EvalLog]) -> list[tuple[str, str, list[Any]]]:
    """(scorer, metric, the value in each run, None where a run lacks it), in first-seen order."""
    names: dict[tuple[str, str], None] = {}
    for log in logs:
        for scorer, metrics in log.results.items():
            for metric in metrics:
                names[(scorer, metric)] = None
    return [(scorer, metric, [log.results.get(scorer, {}).get(metric) for log in logs]) for scorer, metric in names]


def score_differences(runs: Sequence[Mapping[SampleKey, Scores]]) -> list[tuple[SampleKey, list[Scores | None]]]:
    """The samples missing from some run or with a score that differs between runs, each with
    its scores in every run (None where the run lacks it), in the first run's order."""
    keys: dict[SampleKey, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run))
    found = []
    for key in keys:
        scores = [run.get(key) for run in runs]
        if any(s is None for s in scores) or any(s != scores[0] for s in scores[1:]):
            found.append((key, scores))
    return found


def flip_text(scores: Sequence[Scores | None], scorer: str) -> str:
    """How one scorer's value went across runs, e.g. "C -> I" ("-" where a run lacks it)."""
    return " -> ".join("-" if s is None or scorer not in s else score_text(s[scorer]) for s in scores)
