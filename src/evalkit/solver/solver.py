"""The Solver protocol, the Generate callable, `@solver` and `chain`."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from evalkit.registration import Registration, attach, describe, registering
from evalkit.solver.state import TaskState


class Generate(Protocol):
    """Calls the model on `state.messages`, appends its reply and sets `state.output`.

    Keyword arguments are GenerateConfig fields overriding the task's for this call.
    """

    async def __call__(self, state: TaskState, **config: Any) -> TaskState: ...


class Solver(Protocol):
    """One step of a sample's pipeline: `async (state, generate) -> state`."""

    async def __call__(self, state: TaskState, generate: Generate) -> TaskState: ...


class SolverReturnError(TypeError):
    """A solver returned something other than the TaskState."""


def solver(name: Callable[..., Solver] | str | None = None) -> Any:
    """Register a solver factory: `@solver` or `@solver(name="...")`. The factory returns
    `async def solve(state, generate) -> TaskState`; its name and arguments go in the log."""
    if callable(name):
        return registering("solver", None)(name)
    return registering("solver", name)


async def run_solver(step: Solver, state: TaskState, generate: Generate) -> TaskState:
    """Run one solver, refusing a result that is not a TaskState (a forgotten `return state`)."""
    result = await step(state, generate)
    if not isinstance(result, TaskState):
        raise SolverReturnError(
            f"solver '{describe(step)['name']}' returned {type(result).__name__}, not the TaskState; "
            "end it with `return state`"
        )
    return result


def chain(*solvers: Solver) -> Solver:
    """A solver that runs `solvers` in order, stopping early once `state.completed` is set."""

    async def run_chain(state: TaskState, generate: Generate) -> TaskState:
        for step in solvers:
            state = await run_solver(step, state, generate)
            if state.completed:
                break
        return state

    return attach(run_chain, Registration("solver", "chain", {"solvers": [describe(s) for s in solvers]}))


def solver_steps(step: Solver) -> list[dict[str, Any]]:
    """The solvers a task runs, flattened out of chains, each as {name, args}."""
    described = describe(step)
    if described["name"] == "chain" and "solvers" in described["args"]:
        return list(described["args"]["solvers"])
    return [described]
