"""Runs every (task, model) pair of one eval: hosted models side by side, local ones in turn.

Each hosted model is created once, up front, and all its pairs run at the same time (its own
connection pool and limits bound them). Local models (`ModelAPI.local`: hf, vllm) run one at a
time: each is created when its turn comes, runs its pairs one after another, and is closed
before the next loads, so only one holds memory.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import anyio

from evalkit.errors import EvalkitError
from evalkit.log.schema import EvalLog
from evalkit.log.writer import redact
from evalkit.model.aliases import find_alias
from evalkit.model.cache import OPERATIONAL_FIELDS
from evalkit.model.model import Model, resolve_model_name
from evalkit.model.registry import provider_info, split_model_name
from evalkit.run_task import RunOptions, first_leaf, run_task
from evalkit.task import Task

ModelSpec = str | Model | None
CreateModels = Callable[[list[ModelSpec]], Awaitable[list[Model]]]
CloseModels = Callable[[list[Model], list[ModelSpec]], Awaitable[None]]


class PairPlan(Protocol):
    """What an earlier run left for each pair (set by `eval_set` for the eval it drives)."""

    def prepare(self, tasks: list[Task], keys: list[dict[str, Any]], options: RunOptions) -> None:
        """Find the log of each (task, model) pair, the model's settings being `keys[n]`
        (`pair_key`), before anything runs."""

    def complete(self, t: int, n: int) -> EvalLog | None:
        """The finished log of task `t` and model `n`, to reuse instead of running it."""

    def resume(self, t: int, n: int) -> EvalLog | None:
        """The unfinished log of task `t` and model `n`, to resume instead of starting afresh."""


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


def pair_key(spec: ModelSpec, options: RunOptions, model_args: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs of a task comparable, as the log header records it: the model as
    given (an alias name or provider/model), the generate config without operational fields,
    the provider arguments (credentials redacted) and the model roles."""
    if isinstance(spec, Model):
        given, config, model_args = (spec.alias or {}).get("name", spec.name), spec.config.merge(options.config), spec.model_args
    else:
        given, config = resolve_model_name(spec), options.config
    key = {
        "model": given,
        "config": {k: v for k, v in config.to_dict().items() if k not in OPERATIONAL_FIELDS},
        "model_args": redact({k: v for k, v in model_args.items() if v is not None}),
        "model_roles": {role: (each.alias or {}).get("name", each.name) for role, each in options.roles.items()},
    }
    return json.loads(json.dumps(key, sort_keys=True, default=str))  # as a header read back holds it


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
    model_args: dict[str, Any] | None = None,
) -> list[EvalLog]:
    """One log per (task, model), in task-major order; `create` makes models from specs (with
    `model_args`) and `close` closes the ones it made. A pair an eval-set plan finds complete
    is not run, and a model whose pairs are all complete is never created."""
    plan = current_plan.get()
    keys = [pair_key(spec, options, model_args or {}) for spec in specs]
    if plan is not None:
        plan.prepare(tasks, keys, options)
    order = [(t, n) for t in range(len(tasks)) for n in range(len(specs))]
    results: dict[tuple[int, int], EvalLog] = {}
    if plan is not None:
        for t, n in order:
            found = plan.complete(t, n)
            if found is not None:
                results[t, n] = found
    todo = {n: [t for t in range(len(tasks)) if (t, n) not in results] for n in range(len(specs))}
    local = [n for n in todo if todo[n] and is_local(specs[n])]
    hosted = [n for n in todo if todo[n] and n not in local]
    overlapping = sum(len(todo[n]) for n in hosted) + (1 if local else 0)
    if overlapping > 1 and options.display == "rich":
        options = replace(options, display="plain")  # one rich bar per pair would not fit one terminal

    async def run_one(t: int, n: int, model: Model) -> None:
        previous = plan.resume(t, n) if plan is not None else None
        results[t, n] = await run_task(tasks[t], model, replace(options, pair_key=keys[n]), resume=previous)
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
        raise first_leaf(raised) from None  # a pair's failure reads as it would have alone
    finally:
        await close(hosted_models, [specs[n] for n in hosted])
    return [results[pair] for pair in order]
