"""eval() end to end with mockllm and a recording ModelAPI: results, logs, errors, limits, config."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import GenerateConfig, MemoryDataset, Model, ModelAPI, ModelOutput, Sample, Task, eval, read_eval_log
from evalkit.errors import ArgumentError
from evalkit.model.types import ChatMessage
from evalkit.scorer import includes, match
from evalkit.solver import chain, chain_of_thought, generate, prompt_template, system_message, user_message


def qa_task(n: int = 10, **kwargs: Any) -> Task:
    samples = [Sample(input=f"Q{i}. ANSWER: {i}", target=str(i)) for i in range(n)]
    return Task(dataset=samples, scorer=match(), name="qa", **kwargs)


class RecordingAPI(ModelAPI):
    """Records the config and messages of every call; answers with the configured text."""

    def __init__(self, model_name: str, latency: float = 0.0, **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        self.calls: list[tuple[list[ChatMessage], GenerateConfig]] = []
        self.latency = latency
        self.inflight = 0
        self.peak = 0

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        self.calls.append((list(messages), config))
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            await anyio.sleep(self.latency)
        finally:
            self.inflight -= 1
        return ModelOutput.from_text("rec", "ok")


def test_eval_scores_and_logs_every_sample(log_dir: Path) -> None:
    [log] = eval(qa_task(10), model="mockllm/m", log_dir=log_dir, display="none")
    assert log.status == "success"
    assert log.results == {"match": {"accuracy": 1.0, "stderr": 0.0}}
    assert log.footer["counts"] == {"total": 10, "completed": 10, "errors": 0}
    assert log.footer["usage"]["mockllm/m"]["output_tokens"] == 10
    reread = read_eval_log(log.location)
    assert sorted(s.id for s in reread.samples) == list(range(1, 11))
    sample = reread.samples[0]
    assert sample.messages[-1]["role"] == "assistant" and sample.output["stop_reason"] == "stop"
    assert sample.scores["match"]["value"] == "C" and sample.usage["total_tokens"] > 0
    assert reread.header["model"] == "mockllm/m" and reread.header["dataset"]["samples"] == 10


def test_epochs_reduce_per_sample(log_dir: Path) -> None:
    outputs = ["1", "x", "x"]  # the one sample is right in 1 of 3 epochs
    task = Task(dataset=[Sample(input="q", target="1")], scorer=match(), epochs=3)
    [log] = eval(task, model="mockllm/m", model_args={"outputs": outputs}, log_dir=log_dir, display="none", max_samples=1)
    assert len(log.samples) == 3 and {s.epoch for s in log.samples} == {1, 2, 3}
    assert log.results["match"]["accuracy"] == pytest.approx(1 / 3)


def test_limit_forms(log_dir: Path) -> None:
    [log] = eval(qa_task(10), model="mockllm/m", limit=3, log_dir=log_dir, display="none")
    assert sorted(s.id for s in log.samples) == [1, 2, 3]
    [log] = eval(qa_task(10), model="mockllm/m", limit="4-6", log_dir=log_dir, display="none")
    assert sorted(s.id for s in log.samples) == [4, 5, 6]
    for bad in ("-1", "x", "5-2", -3):
        with pytest.raises(ArgumentError):
            eval(qa_task(10), model="mockllm/m", limit=bad, log_dir=log_dir, display="none")


def test_sample_errors_are_logged_and_fail_on_error(log_dir: Path) -> None:
    samples = [Sample(input=f"q{i} ANSWER: {i}" + (" BOOM" if i in (3, 7) else ""), target=str(i)) for i in range(10)]
    task = Task(dataset=samples, scorer=match())
    [log] = eval(task, model="mockllm/m", model_args={"error_on": "BOOM"}, fail_on_error=False, log_dir=log_dir, display="none")
    assert log.status == "success"
    assert log.footer["counts"] == {"total": 10, "completed": 8, "errors": 2}
    failed = [s for s in log.samples if s.error]
    assert len(failed) == 2 and "MockLLMError" in failed[0].error
    assert log.results["match"]["accuracy"] == 1.0  # errors are not scored as wrong
    [log] = eval(task, model="mockllm/m", model_args={"error_on": "BOOM"}, fail_on_error=3, log_dir=log_dir, display="none")
    assert log.status == "success"
    [log] = eval(task, model="mockllm/m", model_args={"error_on": "BOOM"}, max_samples=1, log_dir=log_dir, display="none")
    assert log.status == "error" and "failed: MockLLMError" in log.error
    assert len(log.samples) == 4  # samples before the failure are kept


def test_config_precedence_task_then_eval_then_call(log_dir: Path) -> None:
    api = RecordingAPI("x")
    task = Task(
        dataset=[Sample(input="q")],
        solver=[generate(), generate(top_p=0.3)],
        config={"temperature": 0.5, "max_tokens": 7},
    )
    eval(task, model=Model("rec/x", api), temperature=0.2, log_dir=log_dir, display="none")
    (_, first), (_, second) = api.calls
    assert (first.temperature, first.max_tokens, first.top_p) == (0.2, 7, None)
    assert (second.temperature, second.max_tokens, second.top_p) == (0.2, 7, 0.3)


def test_max_connections_bounds_concurrency(log_dir: Path) -> None:
    api = RecordingAPI("x", latency=0.02)
    start = time.monotonic()
    eval(qa_task(40), model=Model("rec/x", api), max_connections=8, log_dir=log_dir, display="none")
    assert api.peak == 8
    assert time.monotonic() - start < 40 * 0.02  # ran concurrently


def test_solvers_shape_the_conversation(log_dir: Path) -> None:
    api = RecordingAPI("x")
    task = Task(
        dataset=[Sample(input="What is 2+2?", metadata={"subject": "maths"})],
        solver=chain(system_message("You are a {subject} tutor."), prompt_template("Question: {prompt}"),
                     chain_of_thought(), generate(), user_message("Are you sure?"), generate()),
        scorer=includes(),
    )
    [log] = eval(task, model=Model("rec/x", api), log_dir=log_dir, display="none")
    messages, _ = api.calls[0]
    assert messages[0].role == "system" and messages[0].content == "You are a maths tutor."
    assert messages[1].content.startswith("Question: What is 2+2?") and "ANSWER: $ANSWER" in messages[1].content
    assert [m["role"] for m in log.samples[0].messages] == ["system", "user", "assistant", "user", "assistant"]


def test_multiple_models_and_tasks(log_dir: Path) -> None:
    logs = eval([qa_task(3), qa_task(2)], model=["mockllm/a", "mockllm/b"], log_dir=log_dir, display="none")
    assert [(log.model, len(log.samples)) for log in logs] == [("mockllm/a", 3), ("mockllm/b", 3), ("mockllm/a", 2), ("mockllm/b", 2)]
    assert len(list(log_dir.glob("*.jsonl"))) == 4


def test_streams_large_file_dataset(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text("".join(f'{{"input": "q ANSWER: {i}", "target": "{i}"}}\n' for i in range(3000)))
    from evalkit import json_dataset

    [log] = eval(Task(dataset=json_dataset(path), scorer=match()), model="mockllm/m", log_dir=tmp_path / "logs", display="none")
    assert log.footer["counts"]["completed"] == 3000 and log.results["match"]["accuracy"] == 1.0
    assert len({s.id for s in log.samples}) == 3000


def test_bad_generate_config_and_memory_dataset(log_dir: Path) -> None:
    with pytest.raises(ArgumentError, match="unknown generate config field"):
        eval(qa_task(1), model="mockllm/m", temperatur=0.1, log_dir=log_dir, display="none")
    task = Task(dataset=MemoryDataset([Sample(input="a ANSWER: a", target="a")], name="mem"), scorer=match())
    [log] = eval(task, model="mockllm/m", log_dir=log_dir, display="none")
    assert log.task == "mem"
