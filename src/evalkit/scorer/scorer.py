"""The Scorer protocol and `@scorer`, which names a scorer and gives it metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Union

from evalkit.registration import registering, registration
from evalkit.scorer.metric import Metric, accuracy, stderr
from evalkit.scorer.score import Score, Target

if TYPE_CHECKING:
    from evalkit.solver.state import TaskState

MetricsSpec = Union[Sequence[Union[Metric, Mapping[str, Sequence[Metric]]]], Mapping[str, Sequence[Metric]]]
"""A list of metrics, or per-key metrics for dict-valued scores (`{"key": [...], "*": [...]}`),
or a list mixing both."""


class Scorer(Protocol):
    """`async (state, target) -> Score`; made by a factory decorated with `@scorer`."""

    async def __call__(self, state: TaskState, target: Target) -> Score: ...


def scorer(metrics: MetricsSpec | None = None, *, name: str | None = None) -> Callable[[Callable[..., Scorer]], Callable[..., Scorer]]:
    """Register a scorer factory with the metrics that summarise its scores (default:
    accuracy and stderr); the scorer is named after the factory unless `name` is given."""
    return registering("scorer", name, {"metrics": metrics if metrics is not None else [accuracy(), stderr()]})


def scorer_metrics(scorer: Any) -> MetricsSpec:
    """The metrics a scorer was registered with (accuracy and stderr for a plain function)."""
    info = registration(scorer)
    if info is None or "metrics" not in info.extras:
        return [accuracy(), stderr()]
    return info.extras["metrics"]
