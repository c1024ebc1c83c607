"""`Score` and the `Scorer` wrapper that carries a scorer's name and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from evalkit.solver.state import TaskState

CORRECT = 1.0
INCORRECT = 0.0

ScoreFn = Callable[[TaskState, list[str]], Awaitable["Score"]]


@dataclass(slots=True)
class Score:
    """A scorer's verdict: a numeric value (1.0 correct, 0.0 incorrect) and the answer it read."""

    value: float
    answer: str | None = None
    explanation: str | None = None
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.value}
        if self.answer is not None:
            data["answer"] = self.answer
        if self.explanation is not None:
            data["explanation"] = self.explanation
        if self.metadata:
            data["metadata"] = self.metadata
        return data


@dataclass
class Scorer:
    """A named scoring function with the metrics that summarise its scores."""

    name: str
    fn: ScoreFn
    metrics: list[Any] = field(default_factory=list)

    async def __call__(self, state: TaskState, target: list[str]) -> Score:
        return await self.fn(state, target)


def scorer(name: str, fn: ScoreFn, metrics: list[Any] | None = None) -> Scorer:
    """Wrap an `async (state, target) -> Score` function; metrics default to accuracy and stderr."""
    from evalkit.scorer.metrics import accuracy, stderr

    return Scorer(name, fn, metrics if metrics is not None else [accuracy(), stderr()])
