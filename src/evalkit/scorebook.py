"""Collects sample scores, reduces each sample's epochs, and computes metrics at the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.registration import describe, unique_names
from evalkit.scorer.metric import Metric
from evalkit.scorer.reducer import ScoreReducer, reducer_name
from evalkit.scorer.score import SampleScore, Score, ScoreValueError
from evalkit.scorer.scorer import MetricsSpec
from evalkit.task import Task, TaskScorer

Results = dict[str, dict[str, Any]]


def metric_label(metric: Metric) -> str:
    """A metric's name in results; `grouped(accuracy(), ...)` shows as its inner metric."""
    described = describe(metric)
    inner = described["args"].get("metric") if described["name"] == "grouped" else None
    return inner["name"] if isinstance(inner, dict) else described["name"]


def _split(spec: MetricsSpec, value: Any) -> list[tuple[str | None, list[Metric]]]:
    """(key, metrics) pairs: key None applies to the whole value; a dict value gets list
    metrics per key; `{"key": [...], "*": [...]}` maps keys (and all other keys) to metrics."""
    keys = list(value) if isinstance(value, Mapping) else []
    plain: list[Metric] = []
    per_key: dict[str, list[Metric]] = {}
    for item in [spec] if isinstance(spec, Mapping) else spec:
        if isinstance(item, Mapping):
            for key, metrics in item.items():
                for each in keys if key == "*" else [key]:
                    per_key.setdefault(each, []).extend(metrics)
        else:
            plain.append(item)
    if keys:
        if plain:
            for key in keys:
                per_key.setdefault(key, []).extend(plain)
        return list(per_key.items())
    return [(None, plain)] if plain else []


def compute_metrics(name: str, spec: MetricsSpec, scores: list[SampleScore], failures: list[str] | None = None) -> Results:
    """Every metric of one scorer over `scores`, as `{result name: {metric: value}}`.

    With `failures`, a metric that raises gets the value None and its error is appended
    there, so one broken metric does not hide the others; without, the error propagates.
    """
    if not scores:
        return {name: {metric_label(m): None for _, ms in _split(spec, None) for m in ms}}
    results: Results = {}
    for key, metrics in _split(spec, scores[0].score.value):
        result_name = name if key is None else f"{name}/{key}"
        values: dict[str, Any] = {}
        for label, each in zip(unique_names([metric_label(m) for m in metrics]), metrics):
            try:
                values[label] = each([_pick(s, key) for s in scores] if key is not None else scores)
            except Exception as error:
                if failures is None:
                    raise
                values[label] = None
                failures.append(f"metric '{label}' of '{result_name}' failed: {type(error).__name__}: {error}")
        results[result_name] = values
    return results


def _shape(value: Any) -> Any:
    """What decides whether metrics and reducers can use a value: strings themselves, the
    type of other scalars, and the shape of lists and dicts."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ("dict", tuple((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_shape(v) for v in value))
    return type(value)


def _pick(sample_score: SampleScore, key: str) -> SampleScore:
    value = sample_score.score.value
    if not isinstance(value, Mapping) or key not in value:
        raise ScoreValueError(f"sample {sample_score.sample_id}: score has no key '{key}' (got {value!r})")
    return SampleScore(Score(value[key]), sample_score.sample_id, sample_score.sample_metadata)


class ScoreBook:
    """Holds each finished sample's scores, reduces epochs, and computes every metric."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.scorers: list[TaskScorer] = task.scorers
        self.reducers: list[ScoreReducer] = task.epochs.reducers  # type: ignore[union-attr]
        self.epochs = epochs
        self.pending: dict[Any, list[dict[str, Score]]] = {}
        self.seen: dict[Any, int] = {}
        self.metadata: dict[Any, dict[str, Any]] = {}
        self.reduced: dict[tuple[str, int], list[SampleScore]] = {
            (s.name, r): [] for s in self.scorers for r in range(len(self.reducers) if epochs > 1 else 1)
        }
        self.unreduced: list[str] = []
        """One line per sample whose epochs a reducer could not combine (counted apart in the footer)."""
        self.metric_failures: list[str] = []
        """Metrics that raised on the whole set of scores (their value is None)."""
        self.scored = 0
        self._checked: dict[Any, str | None] = {}

    def problem(self, sample_id: Any, metadata: dict[str, Any], scores: dict[str, dict[str, Any]]) -> tuple[str, str] | None:
        """The scorer whose score this sample's epochs or metrics cannot use, and why, or None.

        Each reducer is tried on the score (repeated once per epoch) and each metric on it
        alone, so a value no metric can read (a word where a number is due, a missing
        `grouped` field) is caught when it arrives. The answer is remembered per scorer,
        value shape and metadata fields, so the hot path checks each kind of value once.
        """
        for each in self.scorers:
            if each.name not in scores:
                continue
            value = scores[each.name]["value"]
            try:
                key = (each.name, _shape(value), tuple(metadata))
                hash(key)
            except TypeError:  # a value no shape describes: check it every time
                key = None
            if key in self._checked:
                found = self._checked[key]
            else:
                found = self._check(each, Score.from_dict(scores[each.name]), sample_id, metadata)
                if key is not None and len(self._checked) < 10_000:
                    self._checked[key] = found
            if found is not None:
                return each.name, found
        return None

    def _check(self, each: TaskScorer, score: Score, sample_id: Any, metadata: dict[str, Any]) -> str | None:
        if self.epochs > 1:
            for reducer in self.reducers:
                try:
                    reducer([score] * self.epochs)
                except Exception as error:
                    return (f"scorer '{each.name}' gave {score.value!r}, which reducer '{reducer_name(reducer)}' "
                            f"cannot combine across epochs: {type(error).__name__}: {error}")
        try:
            compute_metrics(each.name, each.metrics, [SampleScore(score, sample_id, metadata)])
        except ScoreValueError as error:
            return f"scorer '{each.name}' gave {score.value!r}, which its metrics cannot use: {error}"
        except Exception:
            pass  # a metric may rightly need more than one sample: it fails at the end, on its own
        return None

    def add(self, sample_id: Any, metadata: dict[str, Any], scores: dict[str, dict[str, Any]] | None) -> None:
        """Record one (sample, epoch): its scores, or None if it errored."""
        if scores is not None:
            self.scored += 1
        if self.epochs == 1:
            if scores is not None:
                for each in self.scorers:
                    if each.name in scores:
                        self.reduced[(each.name, 0)].append(SampleScore(Score.from_dict(scores[each.name]), sample_id, metadata))
            return
        self.seen[sample_id] = self.seen.get(sample_id, 0) + 1
        self.metadata[sample_id] = metadata
        if scores is not None:
            self.pending.setdefault(sample_id, []).append({k: Score.from_dict(v) for k, v in scores.items()})
        if self.seen[sample_id] == self.epochs:
            self._reduce(sample_id)

    def _reduce(self, sample_id: Any) -> None:
        del self.seen[sample_id]
        epochs = self.pending.pop(sample_id, [])
        metadata = self.metadata.pop(sample_id)
        problems = []
        for each in self.scorers:
            scores = [e[each.name] for e in epochs if each.name in e]
            if not scores:
                continue
            for index, reducer in enumerate(self.reducers):
                try:
                    reduced = reducer(scores)
                except Exception as error:
                    problems.append(f"scorer '{each.name}' epochs not reducible by '{reducer_name(reducer)}': {error}")
                    continue
                self.reduced[(each.name, index)].append(SampleScore(reduced, sample_id, metadata))
        if problems:
            self.unreduced.append(f"sample {sample_id}: {problems[0]}")

    def results(self) -> Results:
        """Metric values per scorer (and per key, and per reducer when there are several);
        samples with epochs still missing are reduced as they are."""
        for sample_id in list(self.seen):
            self._reduce(sample_id)
        several = self.epochs > 1 and len(self.reducers) > 1
        results: Results = {}
        for (name, index), scores in self.reduced.items():
            label = f"{name}:{reducer_name(self.reducers[index])}" if several else name
            spec = next(s.metrics for s in self.scorers if s.name == name)
            results.update(compute_metrics(label, spec, scores, self.metric_failures))
        return results
