"""Metrics: functions from a list of sample scores to a value (Inspect's `@metric`)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from typing import Any, Literal, Protocol

from evalkit.registration import registering
from evalkit.scorer.score import SampleScore, ScoreValueError, Value, ValueToFloat, to_float


class Metric(Protocol):
    """`(scores) -> value`; made by a factory decorated with `@metric`."""

    def __call__(self, scores: list[SampleScore]) -> Value: ...


def metric(name: Callable[..., Metric] | str | None = None) -> Any:
    """Register a metric factory: use as `@metric` or `@metric(name="...")`. The factory
    returns `def m(scores: list[SampleScore]) -> Value`; the metric is named after it."""
    if callable(name):
        return registering("metric", None)(name)
    return registering("metric", name)


def _floats(scores: list[SampleScore], convert: ValueToFloat = to_float) -> list[float]:
    return [convert(s.score.value) for s in scores]


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


@metric
def accuracy(to_float: ValueToFloat = to_float) -> Metric:
    """The fraction of correct answers (C=1, P=0.5, I and N=0; numbers as they are)."""

    def compute(scores: list[SampleScore]) -> float:
        return _mean(_floats(scores, to_float))

    return compute


@metric
def mean() -> Metric:
    """The mean score value."""

    def compute(scores: list[SampleScore]) -> float:
        return _mean(_floats(scores))

    return compute


@metric
def var() -> Metric:
    """The sample variance of the score values (n - 1 in the denominator)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        return statistics.variance(values) if len(values) > 1 else 0.0

    return compute


@metric
def std() -> Metric:
    """The sample standard deviation of the score values (n - 1 in the denominator)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return compute


@metric
def stderr() -> Metric:
    """The standard error of the mean: sample standard deviation / sqrt(n)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0

    return compute


@metric
def bootstrap_stderr(num_samples: int = 1000, seed: int = 0) -> Metric:
    """The standard deviation of the mean over `num_samples` resamples with replacement
    (seeded, so a log's figure can be reproduced)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        if len(values) < 2:
            return 0.0
        rng = random.Random(seed)
        means = [_mean(rng.choices(values, k=len(values))) for _ in range(num_samples)]
        return statistics.pstdev(means)

    return compute


@metric
def grouped(
    metric: Metric,
    group_key: str,
    *,
    all: Literal["samples", "groups"] | Literal[False] = "samples",
    all_label: str = "all",
) -> Metric:
    """`metric` per value of the sample metadata field `group_key`, plus `all_label`: the
    metric over all samples (`all="samples"`), the mean of the groups (`"groups"`), or none."""

    def compute(scores: list[SampleScore]) -> dict[str, Value]:
        groups: dict[str, list[SampleScore]] = {}
        for sample_score in scores:
            if group_key not in sample_score.sample_metadata:
                raise ScoreValueError(f"grouped(): sample {sample_score.sample_id} has no metadata field '{group_key}'")
            groups.setdefault(str(sample_score.sample_metadata[group_key]), []).append(sample_score)
        results: dict[str, Value] = {name: metric(groups[name]) for name in sorted(groups)}
        if all == "samples":
            results[all_label] = metric(scores)
        elif all == "groups":
            results[all_label] = _mean([to_float(v) for v in results.values()])  # type: ignore[arg-type]
        return results

    return compute
