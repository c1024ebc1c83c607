"""The Solver protocol, the Generate callable and `chain`."""

from __future__ import annotations

from typing import Any, Protocol

from evalkit.solver.state import TaskState


class Generate(Protocol):
    """Calls the model on `state.messages`, appends its reply and sets `state.output`.

    Keyword arguments are GenerateConfig fields overriding the task's for this call.
    """

    async def __call__(self, state: TaskState, **config: Any) -> TaskState: ...


class Solver(Protocol):
    """One step of a sample's pipeline: `async (state, generate) -> state`."""

    async def __call__(self, state: TaskState, generate: Generate) -> TaskState: ...


def chain(*solvers: Solver) -> Solver:
    """A solver that runs `solvers` in order, stopping early once `state.completed` is set."""

    async def run_chain(state: TaskState, generate: Generate) -> TaskState:
        for solver in solvers:
            state = await solver(state, generate)
            if state.completed:
                break
        return state

    return run_chain
