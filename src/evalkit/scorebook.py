"""Collects sample scores, reduces each sample's epochs, and computes metrics at the end."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from evalkit.registration import describe, unique_names
from evalkit.scorer.metric import Metric, accuracy, bootstrap_stderr, grouped, mean, std, stderr, var
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


def compute_metrics(name: str, spec: MetricsSpec, scores: Sequence[SampleScore], failures: list[str] | None = None) -> Results:
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
                values[label] = each(_picked(scores, key) if key is not None else scores)  # type: ignore[arg-type]
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


def _picked(scores: Sequence[SampleScore], key: str) -> Sequence[SampleScore]:
    """Each score's value at `key` (ScoreValueError naming the first sample that lacks it)."""
    if isinstance(scores, _ScoreValues):
        return scores.picked(key)
    return [_pick(s, key) for s in scores]


def _pick(sample_score: SampleScore, key: str) -> SampleScore:
    value = sample_score.score.value
    if not isinstance(value, Mapping) or key not in value:
        raise ScoreValueError(f"sample {sample_score.sample_id}: score has no key '{key}' (got {value!r})")
    return SampleScore(Score(value[key]), sample_score.sample_id, sample_score.sample_metadata)


_VALUE_ONLY = {factory().__code__ for factory in (accuracy, mean, var, std, stderr, bootstrap_stderr)}
"""The code of the built-in metrics that read nothing of a SampleScore but its value."""
_GROUPED = grouped(mean(), "key").__code__


def _metrics_of(spec: MetricsSpec) -> Iterator[Metric]:
    for item in [spec] if isinstance(spec, Mapping) else spec:
        if isinstance(item, Mapping):
            for metrics in item.values():
                yield from metrics
        else:
            yield item


def _needs(metric: Metric) -> int:
    """What a metric reads of each SampleScore: 0 its value (and id), 1 also the sample's
    metadata (`grouped()` of such a metric), 2 anything (a user metric)."""
    code = getattr(metric, "__code__", None)
    if code in _VALUE_ONLY:
        return 0
    if code is _GROUPED:
        inner = metric.__closure__[code.co_freevars.index("metric")].cell_contents  # type: ignore[attr-defined]
        return max(1, _needs(inner))
    return 2


def needs(spec: MetricsSpec) -> int:
    """What the metrics of `spec` read of each SampleScore (see `_needs`)."""
    return max((_needs(m) for m in _metrics_of(spec)), default=0)


class _SampleScores(list[SampleScore]):
    """A scorer's reduced scores, each kept whole (for `grouped()` and user metrics)."""

    def add(self, score: Score, sample_id: Any, metadata: dict[str, Any]) -> None:
        self.append(SampleScore(score, sample_id, metadata))


class _Ids:
    """Sample ids: a packed array while they are whole numbers, a list once one is not."""

    __slots__ = ("ints", "others")

    def __init__(self) -> None:
        self.ints = array("q")
        self.others: list[Any] | None = None

    def append(self, sample_id: Any) -> None:
        if self.others is None:
            if type(sample_id) is int and -(1 << 63) <= sample_id < 1 << 63:
                self.ints.append(sample_id)
                return
            self.others = list(self.ints)
            self.ints = array("q")
        self.others.append(sample_id)

    def __getitem__(self, index: int) -> Any:
        return self.ints[index] if self.others is None else self.others[index]


class _Shared:
    """One object for each of the equal strings and metadata dicts that repeat across samples
    (score values such as C and I, metadata such as {"topic": "maths"}), up to 10,000 each."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.metadata: dict[tuple[Any, ...], dict[str, Any]] = {}

    def value(self, value: Any) -> Any:
        if isinstance(value, str) and len(self.strings) < self.LIMIT:
            return self.strings.setdefault(value, value)
        return value

    def sample_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Shared only when every field is a string, int, bool or None (the type is part of
        the key, so 1 and True stay apart)."""
        if len(self.metadata) >= self.LIMIT or not all(v is None or type(v) in (str, int, bool) for v in metadata.values()):
            return metadata
        return self.metadata.setdefault(tuple((k, type(v), v) for k, v in metadata.items()), metadata)


class _ScoreValues(Sequence[SampleScore]):
    """A scorer's reduced scores kept as bare values and sample ids (and, for `grouped()`,
    the samples' metadata), for metrics that read no more; each SampleScore is made when a
    metric reaches it."""

    def __init__(self, shared: _Shared, with_metadata: bool) -> None:
        self.values: list[Any] = []
        self.ids = _Ids()
        self.metadata: list[dict[str, Any]] | None = [] if with_metadata else None
        self.shared = shared

    def add(self, score: Score, sample_id: Any, metadata: dict[str, Any]) -> None:
        self.values.append(self.shared.value(score.value))
        self.ids.append(sample_id)
        if self.metadata is not None:
            self.metadata.append(self.shared.sample_metadata(metadata))

    def picked(self, key: str) -> _ScoreValues:
        """The same scores holding only each value's `key` (see `_pick`)."""
        picked = _ScoreValues(self.shared, False)
        picked.values = [_pick(s, key).score.value for s in self]
        picked.ids, picked.metadata = self.ids, self.metadata
        return picked

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> SampleScore:  # type: ignore[override]
        metadata = self.metadata[index] if self.metadata is not None else {}
        return SampleScore(Score(self.values[index]), self.ids[index], metadata)

    def __iter__(self) -> Iterator[SampleScore]:
        return (self[index] for index in range(len(self.values)))


class ScoreBook:
    """Holds each finished sample's scores, reduces epochs, and computes every metric."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.scorers: list[TaskScorer] = task.scorers
        self.reducers: list[ScoreReducer] = task.epochs.reducers  # type: ignore[union-attr]
        self.epochs = epochs
        self.pending: dict[Any, list[dict[str, Score]]] = {}
        self.seen: dict[Any, int] = {}
        self.metadata: dict[Any, dict[str, Any]] = {}
        shared = _Shared()
        self.reduced: dict[tuple[str, int], _ScoreValues | _SampleScores] = {
            (s.name, r): _ScoreValues(shared, needs(s.metrics) == 1) if needs(s.metrics) < 2 else _SampleScores()
            for s in self.scorers for r in range(len(self.reducers) if epochs > 1 else 1)
        }
        """Each scorer's reduced scores: only values, ids (and metadata) where its metrics read no more."""
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
                        self.reduced[(each.name, 0)].add(Score.from_dict(scores[each.name]), sample_id, metadata)
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
                self.reduced[(each.name, index)].add(reduced, sample_id, metadata)
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
