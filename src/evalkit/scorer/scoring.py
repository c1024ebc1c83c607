"""`score(state)`: a solver scores the sample's state with the task's scorers mid-run
(an agent checking an answer before it tries again)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from evalkit.scorer.score import Score

if TYPE_CHECKING:
    from evalkit.solver.state import TaskState
    from evalkit.task import TaskScorer

_scorers: contextvars.ContextVar[list[TaskScorer] | None] = contextvars.ContextVar("evalkit_task_scorers", default=None)


@contextmanager
def task_scorers(scorers: list[TaskScorer]) -> Iterator[None]:
    """Make `scorers` the ones `score()` uses while one sample runs."""
    token = _scorers.set(scorers)
    try:
        yield
    finally:
        _scorers.reset(token)


async def score(state: TaskState) -> list[Score]:
    """Score `state` with each of the running task's scorers (for solvers; the final scores
    are still taken when the sample ends)."""
    scorers = _scorers.get()
    if scorers is None:
        raise RuntimeError("score(state) works only inside a running eval's solver")
    return [await each.fn(state, state.target) for each in scorers]
