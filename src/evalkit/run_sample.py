"""Solves and scores one (sample, epoch), turning any failure into that sample's error."""

from __future__ import annotations

import copy
import time
import traceback
from typing import Any

from evalkit.dataset.sample import Sample
from evalkit.errors import EmbeddingsUnsupportedError, LogValueError, ToolsUnsupportedError
from evalkit.log.encode import encode
from evalkit.log.schema import EvalSample
from evalkit.model.cache import CachePolicy, SampleCache, sample_cache
from evalkit.model.model import Model, RetryRecorder, retry_recorder
from evalkit.model.types import ChatMessageUser, GenerateConfig, ModelUsage, message_to_dict
from evalkit.scorer.score import Target
from evalkit.scorer.scoring import task_scorers
from evalkit.sample_limits import LimitExceededError, SampleLimits
from evalkit.sandbox.context import sample_sandbox
from evalkit.solver.solver import run_solver
from evalkit.solver.task_generate import TaskGenerate
from evalkit.solver.state import TaskState
from evalkit.task import Task


def initial_state(model: Model, sample: Sample, epoch: int, limits: SampleLimits = SampleLimits()) -> TaskState:
    """A fresh state: its own copies of the choices and metadata, so a solver that changes
    them never touches the dataset or another epoch."""
    return TaskState(
        model=model.name,
        sample_id=sample.id,  # type: ignore[arg-type]
        epoch=epoch,
        input=sample.input,
        messages=[ChatMessageUser(content=sample.input)] if isinstance(sample.input, str) else list(sample.input),
        target=Target(sample.targets),
        choices=list(sample.choices) if sample.choices is not None else None,
        metadata=copy.deepcopy(sample.metadata) if sample.metadata else {},
        message_limit=limits.messages,
        token_limit=limits.tokens,
    )


def _error_text(error: BaseException) -> str:
    """The error and the last frames of its traceback (LogWriter masks credentials in it)."""
    return f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-3)}"


async def run_sample(
    task: Task, model: Model, config: GenerateConfig, sample: Sample, epoch: int, retries: RetryRecorder,
    limits: SampleLimits = SampleLimits(), cache: CachePolicy | None = None,
) -> EvalSample:
    """Solve and score one (sample, epoch); an exception becomes the record's error. `cache`
    is the eval's output cache policy for the solvers' generate()."""
    state = initial_state(model, sample, epoch, limits)
    sample_usage = ModelUsage()
    generate = TaskGenerate(model, config, sample_usage, cache)
    token = retry_recorder.set(retries)
    cached = SampleCache(epoch)
    cache_token = sample_cache.set(cached)
    begin = time.monotonic()
    error = None
    limit_hit = None
    scores: dict[str, dict[str, Any]] = {}
    try:
        async with sample_sandbox(sample.sandbox or task.sandbox):  # type: ignore[arg-type]
            try:
                with task_scorers(task.scorers):
                    state = await run_solver(task.solver, state, generate)  # type: ignore[arg-type]
            except LimitExceededError as ex:
                limit_hit = ex.to_dict()
                state.completed = True
            for each in task.scorers:
                scores[each.name] = (await each.fn(state, state.target)).to_dict()
    except (ToolsUnsupportedError, EmbeddingsUnsupportedError):
        raise  # every sample would fail the same way: the run stops with this one line
    except Exception as ex:
        error = _error_text(ex)
    finally:
        retry_recorder.reset(token)
        sample_cache.reset(cache_token)
    record = EvalSample(
        id=sample.id,  # type: ignore[arg-type]
        epoch=epoch,
        input=sample.input_for_log(),
        target=sample.target,
        messages=[message_to_dict(m) for m in state.messages],
        output=_output_dict(state),
        scores=scores,
        usage=sample_usage.to_dict() if sample_usage.total_tokens else None,
        time=round(time.monotonic() - begin, 4),
        error=error,
        retries=retries.events or None,
        metadata=sample.metadata or None,
        state_metadata=state.metadata,
        limit=limit_hit,
        cache_hits=cached.hits or None,
    )
    return record


def failed(record: EvalSample, error: str) -> EvalSample:
    """`record` as an errored sample: no scores, and only what the dataset gave (its metadata
    too, unless that is what the log cannot hold)."""
    keep = {k: v for k, v in record.to_dict().items() if k not in ("scores", "state_metadata", "output", "messages")}
    safe = EvalSample.from_dict(keep)
    safe.state_metadata = None
    safe.error = error if record.error is None else f"{error}\n{record.error}"
    try:
        encode(safe.to_dict())
    except LogValueError:
        safe.metadata = None
    return safe


def _output_dict(state: TaskState) -> dict[str, Any] | None:
    output = state.output
    if output is None:
        return None
    data: dict[str, Any] = {"model": output.model, "completion": output.completion, "stop_reason": output.stop_reason}
    if len(output.choices) > 1:
        data["choices"] = [c.message.text for c in output.choices[1:]]
    if output.choices and output.choices[0].logprobs:
        data["logprobs"] = [{"token": lp.token, "logprob": lp.logprob} for lp in output.choices[0].logprobs]
    if output.metadata:
        data["metadata"] = output.metadata
    return data
