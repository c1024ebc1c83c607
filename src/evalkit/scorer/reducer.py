"""Epoch reducers: combine one sample's scores across epochs into one (Inspect's names)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from evalkit.errors import TaskLoadError
from evalkit.registration import registering, registration
from evalkit.scorer.score import Score, ScoreValueError, Value, to_float


class ScoreReducer(Protocol):
    """`(scores of one sample's epochs) -> Score`; made by a factory decorated with `@score_reducer`."""

    def __call__(self, scores: list[Score]) -> Score: ...


_BY_NAME: dict[str, Callable[..., ScoreReducer]] = {}


def score_reducer(name: Callable[..., ScoreReducer] | str | None = None) -> Any:
    """Register a reducer factory: `@score_reducer` or `@score_reducer(name="...")`. The
    factory returns `def reduce(scores: list[Score]) -> Score`; `Epochs` finds it by name."""

    def decorate(factory: Callable[..., ScoreReducer], given: str | None) -> Any:
        made = registering("score_reducer", given)(factory)
        _BY_NAME[given or factory.__name__] = made
        return made

    if callable(name):
        return decorate(name, None)
    return lambda factory: decorate(factory, name)


def _combine(scores: list[Score], fn: Callable[[list[float]], float]) -> Value:
    """Apply `fn` to the values as floats: per key for dicts, per position for lists."""
    first = scores[0].value
    if isinstance(first, Mapping):
        keys = list(first)
        for score in scores:
            if not isinstance(score.value, Mapping) or list(score.value) != keys:
                raise ScoreValueError(f"epochs gave dict scores with different keys ({keys} and {score.value!r})")
        return {k: fn([to_float(s.value[k]) for s in scores]) for k in keys}  # type: ignore[index]
    if isinstance(first, Sequence) and not isinstance(first, str):
        length = len(first)
        if any(not isinstance(s.value, Sequence) or isinstance(s.value, str) or len(s.value) != length for s in scores):
            raise ScoreValueError("epochs gave list scores of different lengths")
        return [fn([to_float(s.value[i]) for s in scores]) for i in range(length)]  # type: ignore[index]
    return fn([to_float(s.value) for s in scores])


def _reduced(scores: list[Score], value: Value) -> Score:
    """A Score with `value`, keeping the answer and explanation when every epoch agrees."""
    answers = {s.answer for s in scores}
    explanations = {s.explanation for s in scores}
    return Score(value, answers.pop() if len(answers) == 1 else None, explanations.pop() if len(explanations) == 1 else None)


@score_reducer(name="mean")
def mean_score() -> ScoreReducer:
    """The mean of the epochs' values."""
    return lambda scores: _reduced(scores, _combine(scores, lambda v: math.fsum(v) / len(v)))


@score_reducer(name="median")
def median_score() -> ScoreReducer:
    """The median of the epochs' values."""
    return lambda scores: _reduced(scores, _combine(scores, statistics.median))


@score_reducer(name="max")
def max_score() -> ScoreReducer:
    """The highest of the epochs' values."""
    return lambda scores: _reduced(scores, _combine(scores, max))


@score_reducer(name="min")
def min_score() -> ScoreReducer:
    """The lowest of the epochs' values."""
    return lambda scores: _reduced(scores, _combine(scores, min))


@score_reducer(name="mode")
def mode_score() -> ScoreReducer:
    """The most common value (the first seen on a tie); works for any value, strings too."""

    def reduce(scores: list[Score]) -> Score:
        counts = Counter(repr(s.value) for s in scores)
        best = max(counts.values())
        return _reduced(scores, next(s.value for s in scores if counts[repr(s.value)] == best))

    return reduce


def _successes(scores: list[Score], value: float) -> int:
    return sum(to_float(s.value) >= value for s in scores)


@score_reducer
def pass_at(k: int, value: float = 1.0) -> ScoreReducer:
    """The unbiased pass@k estimate: the chance that at least one of k epochs drawn without
    replacement scores at least `value` (needs k <= epochs)."""

    def reduce(scores: list[Score]) -> Score:
        n, c = len(scores), _successes(scores, value)
        if k > n:
            raise ScoreValueError(f"pass_at({k}) needs at least {k} epochs (got {n})")
        estimate = 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)
        return _reduced(scores, estimate)

    return reduce


@score_reducer
def at_least(k: int, value: float = 1.0) -> ScoreReducer:
    """1 when at least k epochs score at least `value`, else 0."""
    return lambda scores: _reduced(scores, 1.0 if _successes(scores, value) >= k else 0.0)


def reducer_name(reducer: ScoreReducer) -> str:
    """A reducer's name as results show it: `mean`, `pass_at_2`, `at_least_3`, ..."""
    info = registration(reducer)
    if info is None:
        return getattr(reducer, "__name__", "reducer")
    if info.name in ("pass_at", "at_least"):
        return f"{info.name}_{info.args['k']}"
    return info.name


def reducer_by_name(name: str) -> ScoreReducer:
    """`mean`, `median`, `mode`, `max`, `min`, `pass_at_K`, `at_least_K` or a user reducer's name."""
    for prefix, factory in (("pass_at_", pass_at), ("at_least_", at_least)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return factory(int(name[len(prefix):]))
    if name not in _BY_NAME:
        known = ", ".join([*sorted(_BY_NAME), "pass_at_K", "at_least_K"])
        raise TaskLoadError(f"unknown epochs reducer '{name}' (use one of {known}, or a @score_reducer)")
    return _BY_NAME[name]()


ReducerSpec = str | ScoreReducer | Sequence[str | ScoreReducer] | None


@dataclass
class Epochs:
    """How many times to run each sample, and how to combine its scores (default: mean)."""

    epochs: int
    reducer: ReducerSpec = None
    reducers: list[ScoreReducer] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise TaskLoadError(f"epochs must be a whole number of at least 1 (got {self.epochs!r})")
        given = self.reducer if isinstance(self.reducer, (list, tuple)) else [self.reducer or "mean"]
        self.reducers = [reducer_by_name(r) if isinstance(r, str) else r for r in given]  # type: ignore[misc]
        if not self.reducers:
            raise TaskLoadError("Epochs(reducer=[]) needs at least one reducer")
