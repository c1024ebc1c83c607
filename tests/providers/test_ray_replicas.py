"""`-M replicas=N`: hf and hf-pipeline models as Ray actors, on a local Ray this module starts."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Iterator

import anyio
import pytest

import evalkit
import evalkit.errors
from evalkit import ChatMessageUser, ContentImage, ContentText, GenerateConfig, Model, get_model
from evalkit.errors import ModelArgsError, ModelNotFoundError
from evalkit.providers.local.replicas import ReplicaError, ReplicatedAPI
from tests.conftest import run_cli
from tests.providers.test_hf import generate_all as concurrently

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

PROMPTS = [
    "Hi", "What is the capital of Japan?", "2 + 2 = ?", "Name a colour.",
    "Write one long sentence about the history of the river and the mountains around it.",
    "Tell me something interesting about octopuses.", "Count to five.", "Say yes.",
]
GREEDY = GenerateConfig(temperature=0.0, max_tokens=10)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (replicated models reuse it and leave it running)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20,
             log_to_driver=False)
    yield
    ray.shutdown()


generate_all = functools.partial(concurrently, config=GREEDY)


def generate_one(model: Model, input: Any) -> evalkit.ModelOutput:
    return anyio.run(functools.partial(model.generate, input, config=GREEDY))


def stats(model: Model) -> list[dict[str, int]]:
    assert isinstance(model.api, ReplicatedAPI)
    return anyio.run(model.api.replica_stats)


def close(model: Model) -> None:
    anyio.run(model.aclose)


def wait_gone(pids: list[int], seconds: float = 20) -> list[int]:
    """The pids still running after up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if psutil.pid_exists(pid)]


def test_greedy_answers_with_two_replicas_equal_one_and_spread(tiny_llama: Path) -> None:
    local = get_model("hf/local", model_path=str(tiny_llama), device="cpu")
    one = get_model("hf/local", model_path=str(tiny_llama), device="cpu", replicas=1)
    try:
        expected = [o.completion for o in generate_all(local, PROMPTS)]
        assert [o.completion for o in generate_all(one, PROMPTS)] == expected
    finally:
        close(one)  # it holds both of the module's CPUs
    two = get_model("hf/local", model_path=str(tiny_llama), device="cpu", replicas="2")
    try:
        replies = generate_all(two, PROMPTS)
        assert [o.completion for o in replies] == expected
        assert [o.usage for o in replies] == [o.usage for o in generate_all(local, PROMPTS)]
        served = [s["served"] for s in stats(two)]
        assert len(served) == 2 and min(served) >= 2 and sum(served) == len(PROMPTS)
        assert two.api.max_connections() == 2 * local.api.max_connections()
        assert two.api.weights() == local.api.weights()
        vectors = anyio.run(two.api.embed, ["a river", "a mountain"])
        for vector, expected_vector in zip(vectors, anyio.run(local.api.embed, ["a river", "a mountain"]), strict=True):
            assert vector == pytest.approx(expected_vector, abs=1e-5)
    finally:
        close(local)
        close(two)


def test_pipeline_replicas_answer_like_one_process(tmp_path: Path, smol_tokenizer: Any) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    config = LlamaConfig(vocab_size=len(smol_tokenizer), pad_token_id=smol_tokenizer.pad_token_id, num_labels=2,
                         id2label=labels, label2id={v: k for k, v in labels.items()}, hidden_size=64,
                         intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    LlamaForSequenceClassification(config).save_pretrained(tmp_path)
    smol_tokenizer.save_pretrained(tmp_path)
    name = "hf-pipeline/sentiment-analysis/local"
    local = get_model(name, model_path=str(tmp_path))
    two = get_model(name, model_path=str(tmp_path), replicas=2)
    try:
        texts = ["I loved it", "A dreadful, boring film", "Fine.", "Best day ever"]
        expected = generate_all(local, texts)
        replies = generate_all(two, texts)
        assert [o.completion for o in replies] == [o.completion for o in expected]
        for reply, alone in zip(replies, expected, strict=True):
            scores = {r["label"]: r["score"] for r in alone.metadata["output"]}
            assert {r["label"]: r["score"] for r in reply.metadata["output"]} == pytest.approx(scores, abs=1e-5)
        assert sorted(s["served"] for s in stats(two)) == [2, 2]
    finally:
        close(local)
        close(two)


def test_a_replicas_error_is_the_providers_own_one_line(tiny_llama: Path) -> None:
    image = ChatMessageUser(content=[ContentText(text="What is this?"), ContentImage(image="data:image/png;base64,AA==")])
    local = get_model("hf/local", model_path=str(tiny_llama), device="cpu")
    two = get_model("hf/local", model_path=str(tiny_llama), device="cpu", replicas=2)
    try:
        with pytest.raises(Exception) as in_process:
            generate_one(local, [image])
        with pytest.raises(Exception) as replicated:
            generate_one(two, [image])
        assert isinstance(in_process.value, evalkit.errors.EvalkitError)
        assert type(replicated.value) is type(in_process.value)
        assert str(replicated.value) == str(in_process.value) and "\n" not in str(replicated.value)
        assert [o.completion for o in generate_all(two, PROMPTS[:2])] == [o.completion for o in generate_all(local, PROMPTS[:2])]
    finally:
        close(local)
        close(two)


def test_bad_arguments_and_a_model_that_cannot_load_fail_with_one_line(tmp_path: Path) -> None:
    for bad in ("two", 0, "1.5"):
        with pytest.raises(ModelArgsError, match="replicas"):
            get_model("hf/local", model_path=str(tmp_path), replicas=bad)
    with pytest.raises(ModelNotFoundError) as error:
        get_model("hf/local", model_path=str(tmp_path / "missing"), device="cpu", replicas=2)
    assert "\n" not in str(error.value) and "missing" in str(error.value)


def test_a_dead_replica_fails_its_requests_with_one_line_and_aclose_leaves_nothing(tiny_llama: Path) -> None:
    two = get_model("hf/local", model_path=str(tiny_llama), device="cpu", replicas=2)
    pids = [s["pid"] for s in stats(two)]
    assert len(set(pids)) == 2 and all(psutil.pid_exists(pid) for pid in pids)
    ray.kill(two.api.actors[0], no_restart=True)
    wait_gone(pids[:1])
    with pytest.raises(ReplicaError) as error:
        generate_one(two, PROMPTS[0])  # the least loaded is the dead one: it has served nothing yet
    assert str(error.value).startswith("replica 1 of hf/local stopped:") and "\n" not in str(error.value)
    assert len(generate_all(two, PROMPTS[:3])) == 3  # the live replica takes everything now
    assert [s["pid"] for s in stats(two)] == pids[1:]
    close(two)
    assert wait_gone(pids) == []
    assert ray.is_initialized()  # the module's Ray: not this model's to shut down


@pytest.mark.slow
def test_cli_eval_starts_ray_on_demand(facts_task: Path, tmp_path: Path) -> None:
    """A fresh process with no Ray: `-M replicas=2` starts a local one, answers, shuts it down."""
    result = run_cli(
        "eval", str(facts_task), "--model", "hf/bundled", "-M", "replicas=2", "--log-dir", str(tmp_path),
        "--display", "none", env={"RAY_ADDRESS": ""},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    assert lines[0]["header"]["model"] == "hf/bundled"
    assert lines[-1]["footer"]["results"]["includes"]["accuracy"] == 1.0


def test_vllm_parallel_sizes_pick_vllms_ray_backends() -> None:
    from evalkit.providers.local.replicas import ray_engine_args

    assert ray_engine_args({"tensor_parallel_size": 2}) == {"distributed_executor_backend": "ray"}
    assert ray_engine_args({"pipeline_parallel_size": "2", "data_parallel_size": 4}) == {
        "distributed_executor_backend": "ray", "data_parallel_backend": "ray"}
    assert ray_engine_args({"tensor_parallel_size": 1, "data_parallel_size": 1}) == {}
    assert ray_engine_args({"tensor_parallel_size": 2, "distributed_executor_backend": "mp"}) == {}
    with pytest.raises(ModelArgsError, match="replicas=two"):  # vllm takes -M replicas too
        get_model("vllm/local", model_path="unused", replicas="two")
