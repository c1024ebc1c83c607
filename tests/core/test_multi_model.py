"""Several models and tasks in one eval: every (task, model) pair runs, hosted pairs side by side,
local ones in turn; datasets are checked before any model; -T shared by several tasks."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import Model, ModelAPI, ModelOutput, Sample, Task
from evalkit.providers.mock import MockLLM
from evalkit.scorer import match
from tests.conftest import run_cli
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply

TASKS = """
from evalkit import task, Task, Sample
from evalkit.scorer import match

@task
def alpha(n: int = 4):
    return Task(dataset=[Sample(input=f"alpha {i} ANSWER: {i}", target=str(i), id=i) for i in range(n)], scorer=match())

@task
def beta(k: int = 3):
    return Task(dataset=[Sample(input=f"beta {i} ANSWER: {i}", target=str(i), id=i) for i in range(k)], scorer=match())
"""


def write_tasks(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tasks.py"
    path.write_text(TASKS + extra)
    return path


class Spans:
    """When each request started and ended, by (task, model), recorded by a slow server."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.spans: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def handler(self, request: Request) -> Reply:
        body = request.json()
        time.sleep(self.latency)
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.spans.append((f"{prompt.split()[0]} {body['model']}", request.arrived, time.monotonic()))
        return chat_reply(request)

    def overlap(self, a: str, b: str) -> bool:
        return any(s1 < e2 and s2 < e1 for k1, s1, e1 in self.spans if k1 == a for k2, s2, e2 in self.spans if k2 == b)

    def during(self, a: str, b: str) -> bool:
        """Whether `b` sent a request between `a`'s first and last. With one connection per
        model this holds only because the model's pool hands its turns out first come, first
        served (two waiting pairs alternate); a pool that let one pair jump the queue would
        break it without any pair being starved."""
        starts = [s for k, s, _ in self.spans if k == a]
        return any(min(starts) < s < max(starts) for k, s, _ in self.spans if k == b)

    def peak(self) -> int:
        events = sorted([(s, 1) for _, s, _ in self.spans] + [(e, -1) for _, _, e in self.spans])
        level = best = 0
        for _, change in events:
            level += change
            best = max(best, level)
        return best


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_hosted_pairs_run_at_once_each_model_within_its_own_pool(tmp_path: Path, log_dir: Path, openai_env: None) -> None:
    spans = Spans(latency=0.15)
    with RecordingServer(spans.handler) as server:
        logs = evalkit.eval(
            [str(write_tasks(tmp_path)) + "@alpha", str(write_tasks(tmp_path)) + "@beta"],
            model=["openai/m1", "openai/m2"], model_args={"base_url": f"{server.url}/v1"},
            task_args={"n": 3}, max_connections=1, log_dir=log_dir, display="none",
        )
    assert [(log.task, log.model) for log in logs] == [
        ("alpha", "openai/m1"), ("alpha", "openai/m2"), ("beta", "openai/m1"), ("beta", "openai/m2")]
    assert all(log.status == "success" for log in logs)
    assert spans.overlap("alpha m1", "alpha m2") and spans.overlap("beta m1", "beta m2")
    assert spans.during("alpha m1", "beta m1") and spans.during("alpha m2", "beta m2")  # a model's pairs interleave
    # max_connections=1 is each model's own pool: its two tasks never send at once
    for model in ("m1", "m2"):
        assert not spans.overlap(f"alpha {model}", f"beta {model}")
        assert not any(s1 < e2 and s2 < e1 for i, (k1, s1, e1) in enumerate(spans.spans) for k2, s2, e2 in spans.spans[i + 1:]
                       if k1.endswith(model) and k2.endswith(model))
    assert spans.peak() == 2


def test_pairs_of_one_model_overlap_when_its_pool_allows(tmp_path: Path, log_dir: Path, openai_env: None) -> None:
    spans = Spans(latency=0.1)
    with RecordingServer(spans.handler) as server:
        logs = evalkit.eval(str(write_tasks(tmp_path)), model="openai/m1", model_args={"base_url": f"{server.url}/v1"},
                            max_samples=1, max_connections=4, log_dir=log_dir, display="none")
    assert [log.status for log in logs] == ["success", "success"]
    assert spans.overlap("alpha m1", "beta m1")


class LocalRecorder(ModelAPI):
    """A model that says it runs in this process; records which (task, model) pairs of its kind
    have a request in flight at once."""

    local = True
    active: list[str] = []
    most_pairs_at_once = 0

    async def generate(self, input: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        pair = f"{input[-1].text.split()[0]} {self.model_name}"
        LocalRecorder.active.append(pair)
        LocalRecorder.most_pairs_at_once = max(LocalRecorder.most_pairs_at_once, len(set(LocalRecorder.active)))
        try:
            await anyio.sleep(0.01)
        finally:
            LocalRecorder.active.remove(pair)
        return ModelOutput.from_text(self.model_name, "0")


def test_local_models_run_one_pair_at_a_time_beside_hosted_ones(log_dir: Path) -> None:
    tasks = [Task(dataset=[Sample(input=f"{name} {i}", target="0", id=i) for i in range(6)], scorer=match(), name=name)
             for name in ("alpha", "beta")]
    local = [Model(f"local/{name}", LocalRecorder(name)) for name in ("l1", "l2")]
    hosted = Model("mockllm/hosted", MockLLM("hosted", latency=0.05))
    logs = evalkit.eval(tasks, model=[*local, hosted], max_samples=3, log_dir=log_dir, display="none")
    assert len(logs) == 6 and all(log.status == "success" for log in logs)
    assert LocalRecorder.most_pairs_at_once == 1  # several samples of one pair at once, never two pairs
    hosted_logs = [log for log in logs if log.model == "mockllm/hosted"]
    local_logs = [log for log in logs if log.model.startswith("local/")]
    # the hosted pairs ran beside the local ones, not after them
    assert min(log.header["started"] for log in hosted_logs) < max(log.header["started"] for log in local_logs)


def test_model_flag_comma_separated_and_repeated(tmp_path: Path) -> None:
    write_tasks(tmp_path)
    result = run_cli("eval", "tasks.py@alpha", "--model", "mockllm/a,mockllm/b", "--model", "mockllm/c", "-T", "n=2",
                     "--log-dir", "logs", "--display", "plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    models = sorted(evalkit.read_eval_log(p, header_only=True).model for p in (tmp_path / "logs").glob("*.jsonl"))
    assert models == ["mockllm/a", "mockllm/b", "mockllm/c"]
    # plain progress lines say which pair they are about
    for model in models:
        assert f"alpha · {model}: 2 samples" in result.stderr


def test_empty_model_in_a_list_is_one_line_error(tmp_path: Path) -> None:
    write_tasks(tmp_path)
    result = run_cli("eval", "tasks.py", "--model", "mockllm/a,,mockllm/b", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --model 'mockllm/a,,mockllm/b' names an empty model")
    assert "Traceback" not in result.stderr


def test_an_empty_model_among_several_is_refused_before_any_pair_runs(tmp_path: Path, log_dir: Path) -> None:
    with pytest.raises(evalkit.EvalkitError, match="model is empty"):
        evalkit.eval(str(write_tasks(tmp_path)), model=["mockllm/a", " "], log_dir=log_dir, display="none")
    assert not log_dir.exists()


def test_task_arg_one_of_several_tasks_lacks_is_a_warning(tmp_path: Path) -> None:
    write_tasks(tmp_path)
    result = run_cli("eval", "tasks.py", "--model", "mockllm/a", "-T", "n=2", "--log-dir", "logs", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: task 'beta' takes no argument n" in result.stderr
    totals = {log.task: log.footer["counts"]["total"]
              for log in (evalkit.read_eval_log(p, header_only=True) for p in (tmp_path / "logs").glob("*.jsonl"))}
    assert totals == {"alpha": 2, "beta": 3}
    alone = run_cli("eval", "tasks.py@beta", "--model", "mockllm/a", "-T", "n=2", cwd=tmp_path)
    assert alone.returncode == 2 and "task 'beta' takes no argument n" in alone.stderr


def test_the_eval_retry_of_one_of_several_tasks_keeps_only_its_arguments(tmp_path: Path, log_dir: Path) -> None:
    logs = evalkit.eval(str(write_tasks(tmp_path)), model="mockllm/a", model_args={"error_on": "beta 1"}, task_args={"n": 2},
                        fail_on_error=False, log_dir=log_dir, display="none")
    beta = next(log for log in logs if log.task == "beta")
    assert beta.header["task_origin"]["args"] == {} and beta.footer["counts"]["errors"] == 1
    retried = evalkit.eval_retry(beta.location, model_args={"error_on": "no prompt holds this"}, display="none")
    assert retried.location == beta.location and retried.status == "success"
    assert retried.footer["counts"] == {"total": 3, "completed": 3, "errors": 0}


def test_datasets_are_checked_before_any_model_is_created(tmp_path: Path) -> None:
    write_tasks(tmp_path, extra="""
@task
def broken():
    return Task(dataset=[Sample(input="x", id=1), Sample(input="y", id=1)])
""")
    result = run_cli("eval", "tasks.py", "--model", "mockllm/a,nosuchprovider/x", cwd=tmp_path)
    assert result.returncode == 2
    assert "uses sample ids more than once" in result.stderr and "nosuchprovider" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_rich_display_with_several_pairs_at_once_becomes_prefixed_lines(tmp_path: Path) -> None:
    write_tasks(tmp_path)
    result = run_cli("eval", "tasks.py", "--model", "mockllm/a,mockllm/b", "--display", "rich", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for pair in ("alpha · mockllm/a", "alpha · mockllm/b", "beta · mockllm/a", "beta · mockllm/b"):
        assert f"{pair}: " in result.stderr and f"{pair} · success" in result.stderr


def test_the_bundled_hf_model_runs_its_pairs_in_turn_beside_a_hosted_model(tmp_path: Path, log_dir: Path) -> None:
    logs = evalkit.eval(str(write_tasks(tmp_path)), model=["hf/bundled", "mockllm/x"], limit=2, max_tokens=4,
                        log_dir=log_dir, display="none")
    assert all(log.status == "success" for log in logs)
    local = sorted((log for log in logs if log.model == "hf/bundled"), key=lambda log: log.header["started"])
    hosted = [log for log in logs if log.model == "mockllm/x"]
    assert len(local) == 2 and local[0].footer["completed"] <= local[1].header["started"]
    assert max(log.header["started"] for log in hosted) < local[0].footer["completed"]  # not kept waiting for it


def closing_records(monkeypatch: pytest.MonkeyPatch, failing: str = "") -> list[str]:
    """Make mockllm's aclose take a checkpoint (as an SDK client's does), then record its model
    (or raise, for `failing`)."""
    closed: list[str] = []

    async def aclose(self: MockLLM) -> None:
        await anyio.sleep(0.01)
        if self.model_name == failing:
            raise RuntimeError(f"{failing} would not close")
        closed.append(self.model_name)

    monkeypatch.setattr(MockLLM, "aclose", aclose)
    return closed


def test_every_model_is_closed_when_one_fails_to_close(tmp_path: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = closing_records(monkeypatch, failing="a")
    with pytest.raises(RuntimeError, match="a would not close"):
        evalkit.eval(str(write_tasks(tmp_path)), model=["mockllm/a", "mockllm/b", "mockllm/c"], log_dir=log_dir, display="none")
    assert closed == ["b", "c"]


def test_a_cancelled_local_lane_still_closes_its_model(tmp_path: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = closing_records(monkeypatch)
    monkeypatch.setattr(MockLLM, "local", True)

    async def cancelled_halfway() -> None:
        with anyio.move_on_after(0.3):
            await evalkit.eval_async(str(write_tasks(tmp_path)), model="mockllm/slow", model_args={"latency": 1.0},
                                     log_dir=log_dir, display="none")

    anyio.run(cancelled_halfway)
    assert closed == ["slow"]
