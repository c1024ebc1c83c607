"""Metrics that reduce a list of score values to one number, and epoch reducers."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Metric:
    """A named function from score values to one number."""

    name: str
    fn: Callable[[list[float]], float]

    def __call__(self, values: list[float]) -> float:
        return self.fn(values) if values else float("nan")


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def accuracy() -> Metric:
    """The fraction of correct scores (the mean of values in [0, 1])."""
    return Metric("accuracy", _mean)


def mean() -> Metric:
    """The mean score value."""
    return Metric("mean", _mean)


def stderr() -> Metric:
    """The standard error of the mean (sample standard deviation / sqrt(n))."""
    return Metric("stderr", lambda v: statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else 0.0)


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "mean": _mean,
    "max": max,
    "min": min,
}
"""Ways to combine one sample's scores across epochs into one value."""
