"""The openai provider: the real openai SDK talking HTTP to a local OpenAI-shaped server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit import GenerateConfig
from evalkit.errors import EvalkitError, ModelArgsError
from tests.conftest import run_cli
from tests.providers.helpers import RETRY_AFTER, generate_and_close, isolate_env, quiz_task_source, waited_for_hint
from tests.servers.http import Reply, RecordingServer, Request
from tests.servers.openai_server import chat_reply, error_reply, openai_reply, scripted

KEY = "sk-test-openai-0123456789"
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZUREAI_OPENAI_API_KEY",
       "AZUREAI_OPENAI_BASE_URL", "OPENAI_API_VERSION")

TASK = quiz_task_source(count=6, factor=7)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, OPENAI_API_KEY=KEY)


def test_chat_maps_every_parameter_and_reads_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")
    config = GenerateConfig(
        max_tokens=2, temperature=0.3, top_p=0.9, stop_seqs=("END",), seed=7, frequency_penalty=0.1,
        presence_penalty=0.2, num_choices=2, logprobs=True, top_logprobs=2,
    )
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("openai/gpt-4o-mini", base_url=f"{server.url}/v1")
        messages = [evalkit.ChatMessageSystem("Be brief."), evalkit.ChatMessageUser("Say it. ANSWER: one two three")]
        output = generate_and_close(model, messages, config)
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["openai-organization"] == "org-test"
    assert request.headers["openai-project"] == "proj-test"
    assert request.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say it. ANSWER: one two three"}],
        "max_tokens": 2, "temperature": 0.3, "top_p": 0.9, "stop": ["END"], "seed": 7, "frequency_penalty": 0.1,
        "presence_penalty": 0.2, "n": 2, "logprobs": True, "top_logprobs": 2,
    }
    assert output.model == "gpt-4o-mini-served"
    assert [c.message.content for c in output.choices] == ["one two", "one two"]
    assert output.stop_reason == "max_tokens"
    assert output.usage == evalkit.ModelUsage(input_tokens=6, output_tokens=4, total_tokens=10)
    first = output.choices[0].logprobs
    assert [(lp.token, lp.logprob) for lp in first] == [("one", -0.5), ("two", -0.5)]
    assert [(t.token, t.logprob) for t in first[0].top_logprobs] == [("one0", -1.0), ("one1", -2.0)]


def test_reasoning_models_get_max_completion_tokens_and_top_k_is_dropped_with_a_warning() -> None:
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("openai/o3-mini", base_url=f"{server.url}/v1")
        with pytest.warns(UserWarning, match="'openai' does not support top_k"):
            output = generate_and_close(model, "ANSWER: fine", GenerateConfig(max_tokens=50, top_k=5))
    body = server.requests[0].json()
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body and "top_k" not in body
    assert output.completion == "fine" and output.stop_reason == "stop"


@pytest.mark.parametrize(
    ("name", "model_args"),
    [("openai/gpt-3.5-turbo-instruct", {}), ("openai/davinci-002", {}), ("openai/my-base-model", {"api": "completions"})],
)
def test_completion_models_use_the_legacy_completions_endpoint(name: str, model_args: dict[str, Any]) -> None:
    with RecordingServer(openai_reply) as server:
        model = evalkit.get_model(name, base_url=f"{server.url}/v1", **model_args)
        messages = [evalkit.ChatMessageSystem("Complete this."), evalkit.ChatMessageUser("ANSWER: alpha beta")]
        output = generate_and_close(model, messages, GenerateConfig(max_tokens=16, top_logprobs=2, stop_seqs=("\n",)))
    [request] = server.requests
    assert request.path == "/v1/completions"
    assert request.json() == {
        "model": name.removeprefix("openai/"), "prompt": "Complete this.\n\nANSWER: alpha beta",
        "max_tokens": 16, "stop": ["\n"], "logprobs": 2,
    }
    assert output.completion == "alpha beta"
    assert [(lp.token, lp.logprob, [t.token for t in lp.top_logprobs]) for lp in output.choices[0].logprobs] == [
        ("alpha", -0.25, ["alpha", "alpha?"]), ("beta", -0.25, ["beta", "beta?"]),
    ]
    assert output.usage is not None and output.usage.total_tokens == 7


def test_model_args_reach_the_client_constructor() -> None:
    def slow(request: Request) -> Reply:
        if "slow" in request.json()["messages"][-1]["content"]:
            time.sleep(2)
        return chat_reply(request)

    with RecordingServer(slow) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1", timeout=0.5,
                                  default_headers={"X-Eval": "yes"}, api="chat")
        assert generate_and_close(model, "ANSWER: ok").completion == "ok"
        start = time.monotonic()
        with pytest.raises(Exception, match="timed out"):
            generate_and_close(model, "slow ANSWER: late", GenerateConfig(max_retries=0))
        assert time.monotonic() - start < 1.5
    assert server.requests[0].headers["x-eval"] == "yes"
    assert server.requests[0].path == "/v1/chat/completions"


def test_rejected_model_args_are_model_args_errors() -> None:
    with pytest.raises(ModelArgsError, match="no_such_option"):
        evalkit.get_model("openai/gpt-4o", base_url="http://127.0.0.1:9/v1", no_such_option=1)
    with pytest.raises(ModelArgsError, match="-M api must be 'chat' or 'completions'"):
        evalkit.get_model("openai/gpt-4o", api="responses")


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(EvalkitError, match="OPENAI_API_KEY"):
        evalkit.get_model("openai/gpt-4o")


def test_key_and_base_url_come_from_a_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with RecordingServer(chat_reply) as server:
        (tmp_path / ".env").write_text(f"OPENAI_API_KEY=sk-from-dotenv-123\nOPENAI_BASE_URL={server.url}/v1\n")
        output = generate_and_close(evalkit.get_model("openai/gpt-4o"), "ANSWER: dotenv")
    assert output.completion == "dotenv"
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-dotenv-123"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "openai: request rejected \\(HTTP 400\\): bad temperature"),
        (401, "openai: authentication failed \\(HTTP 401\\); check OPENAI_API_KEY: bad key"),
        (403, "openai: permission denied for model 'gpt-4o' \\(HTTP 403\\)"),
        (404, "openai: model 'gpt-4o' or its endpoint was not found \\(HTTP 404\\): no such model"),
    ],
)
def test_client_errors_are_clear_and_not_retried(status: int, message: str) -> None:
    detail = {400: "bad temperature", 401: "bad key", 403: "forbidden", 404: "no such model"}[status]
    with RecordingServer(lambda request: error_reply(status, detail)) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        with pytest.raises(EvalkitError, match=message):
            generate_and_close(model, "ANSWER: never")
    assert len(server.requests) == 1
    assert model.retries == 0


def test_rate_limit_is_retried_after_the_servers_hint() -> None:
    handler = scripted([error_reply(429, "slow down", {"Retry-After": str(RETRY_AFTER)})], chat_reply)
    with RecordingServer(handler) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        output = generate_and_close(model, "ANSWER: patient")
    assert output.completion == "patient"
    assert model.retries == 1
    first, second = server.requests
    assert waited_for_hint(first, second) and second.arrived - first.arrived < RETRY_AFTER + 2


def test_server_errors_and_dropped_connections_are_retried() -> None:
    replies = [Reply(drop=True), error_reply(500, "boom", {"Retry-After": "0"}), error_reply(503, "busy", {"retry-after-ms": "10"})]
    with RecordingServer(scripted(replies, chat_reply)) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        output = generate_and_close(model, "ANSWER: survived")
    assert output.completion == "survived"
    assert model.retries == 3 and len(server.requests) == 4


def test_retries_give_up_after_max_retries() -> None:
    with RecordingServer(lambda request: error_reply(500, "always down", {"Retry-After": "0"})) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        with pytest.raises(Exception, match="always down"):
            generate_and_close(model, "ANSWER: never", GenerateConfig(max_retries=2))
    assert len(server.requests) == 3


def test_malformed_json_is_a_clear_error() -> None:
    with RecordingServer(lambda request: Reply(body="<html>gateway</html>")) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        with pytest.raises(Exception, match="openai: the reply is not a JSON object \\(HTTP 200\\).*gateway"):
            generate_and_close(model, "ANSWER: never")
    assert len(server.requests) == 1


def test_a_model_serves_several_event_loops_and_reopens_after_aclose() -> None:
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        assert [generate_and_close(model, f"ANSWER: {i}").completion for i in range(3)] == ["0", "1", "2"]


def test_azure_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREAI_OPENAI_API_KEY", "azure-key-0123456789")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("AZUREAI_OPENAI_BASE_URL", server.url)
        output = generate_and_close(evalkit.get_model("openai/azure/my-gpt4o"), "ANSWER: azure", GenerateConfig(max_tokens=9))
    [request] = server.requests
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == "azure-key-0123456789"
    assert request.json()["model"] == "my-gpt4o" and request.json()["max_tokens"] == 9
    assert output.completion == "azure"


def test_azure_needs_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EvalkitError, match="AZUREAI_OPENAI_BASE_URL"):
        evalkit.get_model("openai/azure/dep")
    monkeypatch.setenv("AZUREAI_OPENAI_BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(EvalkitError, match="AZUREAI_OPENAI_API_KEY"):
        evalkit.get_model("openai/azure/dep")


def test_azure_without_an_api_version_uses_the_latest_ga_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREAI_OPENAI_API_KEY", "azure-key-0123456789")
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("AZUREAI_OPENAI_BASE_URL", server.url)
        output = generate_and_close(evalkit.get_model("openai/azure/my-gpt4o"), "ANSWER: azure")
    assert server.requests[0].path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert output.completion == "azure"


def test_cli_eval_through_openai(tmp_path: Path) -> None:
    (tmp_path / "quiz.py").write_text(TASK)
    with RecordingServer(chat_reply) as server:
        result = run_cli("eval", "quiz.py", "--model", "openai/gpt-4o", "-M", f"base_url={server.url}/v1",
                         "-M", "timeout=20", "--temperature", "0", "--max-tokens", "20", "--log-dir", "logs",
                         "--display", "none", cwd=tmp_path, env={"OPENAI_API_KEY": KEY}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 6
    body = server.requests[0].json()
    assert body["temperature"] == 0 and body["max_tokens"] == 20 and body["messages"][0]["role"] == "system"
    [log_file] = (tmp_path / "logs").glob("*.jsonl")
    log = evalkit.read_eval_log(log_file)
    assert log.model == "openai/gpt-4o" and log.header["model_args"]["timeout"] == 20
    assert sorted(s.output["completion"] for s in log.samples) == sorted(str(i * 7) for i in range(6))
    assert {s.output["stop_reason"] for s in log.samples} == {"stop"}
    assert log.status == "success" and log.footer["results"]["match"]["accuracy"] == 1.0
    assert log.footer["usage"]["openai/gpt-4o"] == {"input_tokens": 24, "output_tokens": 6, "total_tokens": 30}
    assert KEY not in log_file.read_text()


def test_cli_eval_logs_an_authentication_error_on_the_sample(tmp_path: Path) -> None:
    (tmp_path / "quiz.py").write_text(TASK)
    with RecordingServer(lambda request: error_reply(401, "Incorrect API key provided")) as server:
        result = run_cli("eval", "quiz.py", "--model", "openai/gpt-4o", "-M", f"base_url={server.url}/v1",
                         "--log-dir", "logs", "--display", "none", "--max-connections", "1",
                         cwd=tmp_path, env={"OPENAI_API_KEY": KEY}, timeout=120)
    assert result.returncode == 1
    [log_file] = (tmp_path / "logs").glob("*.jsonl")
    log = evalkit.read_eval_log(log_file)
    failed = [s for s in log.samples if s.error]
    assert failed and "authentication failed (HTTP 401); check OPENAI_API_KEY: Incorrect API key provided" in failed[0].error
    assert log.status == "error" and log.footer["retries"] == 0
    assert len(server.requests) == len(failed)
