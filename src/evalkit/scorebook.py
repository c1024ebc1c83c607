"""Collects sample scores, reduces each sample's epochs, and computes metrics at the end."""

from __future__ import annotations

from typing import Any

from evalkit.scorer.metrics import REDUCERS
from evalkit.task import Task


class ScoreBook:
    """Holds one value per scorer per finished sample; errored epochs are left out."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.scorers = task.scorers
        self.epochs = epochs
        self.reduce = REDUCERS[task.epochs_reducer]
        self.pending: dict[Any, list[dict[str, float]]] = {}
        self.seen: dict[Any, int] = {}
        self.values: dict[str, list[float]] = {s.name: [] for s in self.scorers}

    def add(self, sample_id: Any, scores: dict[str, float] | None) -> None:
        """Record one (sample, epoch): its score values, or None if it errored."""
        if self.epochs == 1:
            if scores is not None:
                for name, value in scores.items():
                    if name in self.values:
                        self.values[name].append(value)
            return
        self.seen[sample_id] = self.seen.get(sample_id, 0) + 1
        if scores is not None:
            self.pending.setdefault(sample_id, []).append(scores)
        if self.seen[sample_id] == self.epochs:
            del self.seen[sample_id]
            self._reduce(self.pending.pop(sample_id, []))

    def _reduce(self, epochs: list[dict[str, float]]) -> None:
        for name in self.values:
            values = [scores[name] for scores in epochs if name in scores]
            if values:
                self.values[name].append(self.reduce(values))

    def results(self) -> dict[str, dict[str, float]]:
        """Metric values per scorer; samples with epochs still missing are reduced as they are."""
        for sample_id in list(self.seen):
            self._reduce(self.pending.pop(sample_id, []))
        self.seen.clear()
        return {s.name: {m.name: m(self.values[s.name]) for m in s.metrics} for s in self.scorers}
