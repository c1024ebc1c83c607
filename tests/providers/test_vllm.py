"""`vllm`: the GenerateConfig mapping everywhere; the engine itself where vllm imports (GPU)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

import evalkit
from evalkit import GenerateConfig, get_model
from evalkit.errors import ModelNotFoundError
from evalkit.model.registry import provider_info
from evalkit.providers.local.bundled import bundled_gguf
from evalkit.providers.local.vllm import sampling_kwargs

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_default_sampling_is_greedy_with_evalkit_max_tokens() -> None:
    assert sampling_kwargs(GenerateConfig()) == {"max_tokens": 256, "temperature": 0.0}
    assert sampling_kwargs(GenerateConfig(temperature=0.0, max_tokens=7)) == {"max_tokens": 7, "temperature": 0.0}


def test_every_generation_setting_maps_to_sampling_params() -> None:
    config = GenerateConfig(
        temperature=0.7, top_p=0.9, top_k=40, max_tokens=64, stop_seqs=("\n\n", "END"), seed=3,
        frequency_penalty=0.5, presence_penalty=0.25, num_choices=2, logprobs=True, top_logprobs=4,
        timeout=10, max_connections=8, max_retries=2,
    )
    assert sampling_kwargs(config) == {
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 64, "stop": ["\n\n", "END"], "seed": 3,
        "frequency_penalty": 0.5, "presence_penalty": 0.25, "n": 2, "logprobs": 4,
    }


def test_top_p_alone_samples_and_logprobs_alone_returns_the_chosen_token() -> None:
    assert sampling_kwargs(GenerateConfig(top_p=0.5))["temperature"] == 1.0
    assert sampling_kwargs(GenerateConfig(logprobs=True))["logprobs"] == 0


def test_registered_without_importing_vllm() -> None:
    info = provider_info("vllm")
    assert info.needs == ("vllm",) and info.pip == "evalkit-ai[vllm]"
    assert info.sdk_installed() is HAS_VLLM


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown where vllm is missing")
def test_missing_vllm_says_what_to_install() -> None:
    with pytest.raises(ModelNotFoundError, match=r"pip install evalkit-ai\[vllm\]"):
        get_model("vllm/bundled")


def _gpu() -> None:
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vllm needs a GPU")


@pytest.mark.gpu
def test_bundled_model_on_vllm_batches_and_counts_tokens(facts_task: Path, tmp_path: Path) -> None:
    _gpu()
    model = get_model("vllm/bundled", gpu_memory_utilization=0.3, max_model_len=2048)
    log = evalkit.eval(str(facts_task), model, log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "success"
    assert log.footer["results"]["includes"]["accuracy"] == 1.0
    assert model.api.batcher.batches == [3]
    usage = log.footer["usage"]["vllm/bundled"]
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 3 * 32
    gguf = bundled_gguf()
    assert model.api.weights() == {"name": gguf.name, "sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}


@pytest.mark.gpu
def test_vllm_stop_sequences_and_logprobs() -> None:
    _gpu()
    import anyio

    model = get_model("vllm/bundled", gpu_memory_utilization=0.3, max_model_len=2048)
    config = GenerateConfig(temperature=0, max_tokens=40, stop_seqs=("5",), logprobs=True, top_logprobs=2)
    output = anyio.run(model.generate, "Count from 1 to 10 separated by commas.", config)
    assert "5" not in output.completion and output.stop_reason == "stop"
    logprobs = output.choices[0].logprobs
    assert logprobs and len(logprobs) == output.usage.output_tokens
    assert all(len(lp.top_logprobs) >= 2 for lp in logprobs)


@pytest.mark.gpu
def test_vllm_response_schema_is_guided_decoding() -> None:
    _gpu()
    import json

    import anyio

    model = get_model("vllm/bundled", gpu_memory_utilization=0.3, max_model_len=2048)
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    config = GenerateConfig(temperature=0, max_tokens=40, response_schema=schema)
    output = anyio.run(model.generate, "What is the capital of Japan? Answer in JSON.", config)
    assert isinstance(json.loads(output.completion)["capital"], str)


@pytest.mark.gpu
def test_vllm_tools_through_the_template_and_the_parser(tmp_path: Path) -> None:
    _gpu()
    from evalkit import ChatMessageUser, Sample, Task
    from evalkit.providers.local.chat_prompt import ChatRequest
    from evalkit.scorer import includes
    from evalkit.solver import generate, use_tools
    from tests.providers.test_hf_tools import ADD, FEW_SHOT, add

    model = get_model("vllm/bundled", gpu_memory_utilization=0.3, max_model_len=2048)
    question = [*FEW_SHOT, ChatMessageUser("Add 3 and 4.")]
    task = Task(dataset=[Sample(input=question, target="7")], solver=[use_tools(add()), generate()], scorer=includes(),
                config={"temperature": 0.0, "max_tokens": 40}, name="vllm-tools")
    sample = evalkit.read_eval_log(evalkit.eval(task, model, log_dir=tmp_path, display="none")[0].location).samples[0]
    reply = sample.chat_messages[len(question)]
    assert reply.tool_calls and (reply.tool_calls[0].function, reply.tool_calls[0].arguments) == ("add", {"x": 3, "y": 4})
    prompts = [ChatRequest(tuple(question), (ADD,)), ChatRequest(tuple(sample.chat_messages[:-1]), (ADD,))]
    counted = sum(len(model.api.prompt_ids(p)) for p in prompts)
    assert sample.usage["input_tokens"] == counted
