"""Runs every (task, model) pair of one eval: hosted models side by side, local ones in turn.

Each hosted model is created once, up front, and all its pairs run at the same time (its own
connection pool and limits bound them). Local models (`ModelAPI.local`: hf, vllm) run one at a
time: each is created when its turn comes, runs its pairs one after another, and is closed
before the next loads, so only one holds memory.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import anyio

from evalkit.errors import EvalkitError
from evalkit.log.schema import EvalLog
from evalkit.model.aliases import find_alias
from evalkit.model.model import Model, resolve_model_name
from evalkit.model.registry import provider_info, split_model_name
from evalkit.run_task import RunOptions, run_task
from evalkit.task import Task

ModelSpec = str | Model | None
CreateModels = Callable[[list[ModelSpec]], Awaitable[list[Model]]]
CloseModels = Callable[[list[Model], list[ModelSpec]], Awaitable[None]]


class PairPlan(Protocol):
    """What an earlier run left for each pair (set by `eval_set` for the eval it drives)."""

    def prepare(self, tasks: list[Task], names: list[str], options: RunOptions) -> None:
        """Find each pair's log before anything runs."""

    def complete(self, task: Task, model_name: str) -> EvalLog | None:
        """The pair's finished log, to reuse instead of running it."""

    def resume(self, task: Task, model_name: str) -> EvalLog | None:
        """The pair's unfinished log, to resume instead of starting afresh."""


current_plan: contextvars.ContextVar[PairPlan | None] = contextvars.ContextVar("evalkit_pair_plan", default=None)


def model_name(spec: ModelSpec) -> str:
    """The name a model will have once created (`provider/model`, an alias's own included); a
    name that is neither is left for creating the model to report."""
    if isinstance(spec, Model):
        return spec.name
    name = resolve_model_name(spec)
    try:
        alias = find_alias(name)
    except EvalkitError:
        return name
    return alias.model if alias is not None else name


def is_local(spec: ModelSpec) -> bool:
    """Whether the model runs in this process; an empty name, or one whose provider cannot be
    found, counts as hosted, so creating it up front reports the problem before any pair runs."""
    if isinstance(spec, Model):
        return spec.api.local
    if isinstance(spec, str) and not spec.strip():
        return False
    try:
        return bool(getattr(provider_info(split_model_name(model_name(spec))[0]).load(), "local", False))
    except EvalkitError:
        return False


async def run_pairs(
    tasks: list[Task],
    specs: Sequence[ModelSpec],
    options: RunOptions,
    create: CreateModels,
    close: CloseModels,
    on_finish: Callable[[EvalLog, RunOptions], None],
) -> list[EvalLog]:
    """One log per (task, model), in task-major order; `create` makes models from specs and
    `close` closes the ones it made. A pair an eval-set plan finds complete is not run, and a
    model whose pairs are all complete is never created."""
    plan = current_plan.get()
    names = [model_name(spec) for spec in specs]
    if plan is not None:
        plan.prepare(tasks, names, options)
    order = [(t, n) for t in range(len(tasks)) for n in range(len(specs))]
    results: dict[tuple[int, int], EvalLog] = {}
    if plan is not None:
        for t, n in order:
            found = plan.complete(tasks[t], names[n])
            if found is not None:
                results[t, n] = found
    todo = {n: [t for t in range(len(tasks)) if (t, n) not in results] for n in range(len(specs))}
    local = [n for n in todo if todo[n] and is_local(specs[n])]
    hosted = [n for n in todo if todo[n] and n not in local]
    overlapping = sum(len(todo[n]) for n in hosted) + (1 if local else 0)
    if overlapping > 1 and options.display == "rich":
        options = replace(options, display="plain")  # one rich bar per pair would not fit one terminal

    async def run_one(t: int, n: int, model: Model) -> None:
        previous = plan.resume(tasks[t], names[n]) if plan is not None else None
        results[t, n] = await run_task(tasks[t], model, options, resume=previous)
        on_finish(results[t, n], options)

    async def local_lane() -> None:
        for n in local:
            [model] = await create([specs[n]])
            try:
                for t in todo[n]:
                    await run_one(t, n, model)
            finally:
                await close([model], [specs[n]])

    hosted_models = await create([specs[n] for n in hosted]) if hosted else []
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(local_lane)
            for n, model in zip(hosted, hosted_models):
                for t in todo[n]:
                    group.start_soon(run_one, t, n, model)
    except BaseExceptionGroup as raised:
        raise _first_leaf(raised) from None
    finally:
        await close(hosted_models, [specs[n] for n in hosted])
    return [results[pair] for pair in order]


def _first_leaf(group: BaseException) -> BaseException:
    """The first exception inside a (possibly nested) exception group, so a pair's failure
    reads as it would have alone."""
    error: Any = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
