"""azureml: an Azure ML online endpoint's scoring URL, served locally, through httpx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, ModelOutput, get_model, read_eval_log
from evalkit.errors import EvalkitError
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, RETRY_AFTER, generate_once, waited_for_hint
from tests.servers.http import RecordingServer, Reply


def chat_reply(text: str | None, finish_reason: str = "stop", **choice: Any) -> Reply:
    return Reply(body={"id": "x", "object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason, **choice}],
                       "usage": {"prompt_tokens": 15, "completion_tokens": 3, "total_tokens": 18}})


@pytest.fixture(autouse=True)
def azure_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZUREML_API_KEY", "aml-key-789")
    monkeypatch.delenv("AZUREML_BASE_URL", raising=False)


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, model: str = "azureml/llama-blue", **model_args: Any) -> ModelOutput:
    return generate_once(model, input, gen, base_url=f"{server.url}/score", **model_args)


def test_scoring_request_and_output() -> None:
    logprobs = {"content": [{"token": "Tok", "logprob": -0.1, "top_logprobs": [{"token": "Tok", "logprob": -0.1}]}]}
    with RecordingServer(lambda r: chat_reply("Tokyo", logprobs=logprobs)) as server:
        config = GenerateConfig(max_retries=0, max_tokens=30, temperature=0.5, top_p=0.9, top_k=5, stop_seqs=("x",), seed=1,
                                frequency_penalty=0.1, presence_penalty=0.2, num_choices=1, logprobs=True, top_logprobs=1)
        output = generate(server, [ChatMessageSystem("Brief."), ChatMessageUser("Capital of Japan?")], config)
    [request] = server.requests
    assert request.method == "POST" and request.path == "/score"
    assert request.headers["authorization"] == "Bearer aml-key-789" and request.headers["azureml-model-deployment"] == "llama-blue"
    assert request.json() == {
        "messages": [{"role": "system", "content": "Brief."}, {"role": "user", "content": "Capital of Japan?"}],
        "max_tokens": 30, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop": ["x"], "seed": 1,
        "frequency_penalty": 0.1, "presence_penalty": 0.2, "n": 1, "logprobs": True, "top_logprobs": 1,
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == "azureml/llama-blue"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 15, "output_tokens": 3, "total_tokens": 18}
    [token] = output.choices[0].logprobs or ()
    assert token.token == "Tok" and token.top_logprobs[0].logprob == -0.1


def test_default_deployment_and_content_filter() -> None:
    with RecordingServer(lambda r: chat_reply(None, "content_filter")) as server:
        output = generate(server, "hi", model="azureml/default")
    assert "azureml-model-deployment" not in server.requests[0].headers
    assert output.completion == "" and output.stop_reason == "content_filter"


def test_missing_settings_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EvalkitError, match="provider 'azureml' needs AZUREML_BASE_URL"):
        get_model("azureml/default")
    monkeypatch.setenv("AZUREML_BASE_URL", "http://127.0.0.1:9/score")
    monkeypatch.delenv("AZUREML_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'azureml' needs AZUREML_API_KEY"):
        get_model("azureml/default")


@pytest.mark.parametrize(("status", "message"), [
    (400, "azureml: request rejected \\(HTTP 400\\): rejected"),
    (401, "azureml: authentication failed \\(HTTP 401\\); check AZUREML_API_KEY: rejected"),
    (403, "azureml: permission denied for model 'llama-blue' \\(HTTP 403\\): rejected"),
    (404, "azureml: model 'llama-blue' or its endpoint was not found \\(HTTP 404\\): rejected"),
    (413, "azureml: request rejected \\(HTTP 413\\): rejected"),
    (422, "azureml: request rejected \\(HTTP 422\\): rejected"),
])
def test_client_errors_are_clear_and_not_retried(status: int, message: str) -> None:
    with RecordingServer(lambda r: Reply(status, {"error": {"message": "rejected"}})) as server:
        with pytest.raises(EvalkitError, match=message):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_rate_limit_is_retried_after_retry_after() -> None:
    replies = iter([Reply(429, {"error": "slow"}, headers={"Retry-After": str(RETRY_AFTER)}), chat_reply("after wait")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(server, "hi", GenerateConfig(max_retries=2))
    first, second = server.requests
    assert output.completion == "after wait" and waited_for_hint(first, second)


@pytest.mark.parametrize("reply", [Reply(500, "upstream failed"), Reply(502, "bad gateway"), Reply(drop=True)])
def test_server_errors_and_dropped_connections_are_retried(reply: Reply) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises((httpx.HTTPStatusError, httpx.TransportError)):
            generate(server, "hi", GenerateConfig(max_retries=1))
    assert len(server.requests) == 2


@pytest.mark.parametrize(("reply", "message"), [(Reply(200, "not json"), "response is not JSON"), (Reply(body={"output": "x"}), "response has no choices")])
def test_malformed_responses_are_errors(reply: Reply, message: str) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(RuntimeError, match=message):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(lambda r: chat_reply("Tokyo")) as server:
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "azureml/default", "--limit", "1",
                         "-M", "timeout=30", "--log-dir", str(tmp_path / "logs"),
                         env={"AZUREML_BASE_URL": f"{server.url}/score", "AZUREML_API_KEY": "cli-aml-key"})
    assert result.returncode == 0, result.stderr
    [request] = server.requests
    assert request.headers["authorization"] == "Bearer cli-aml-key" and request.json()["max_tokens"] == 32
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success" and "cli-aml-key" not in path.read_text()


def test_tool_loop_in_the_chat_completions_shape(tmp_path: Path) -> None:
    from tests.providers.test_openai_tools import ADD_TOOL, SENT_BACK, SUMS_MESSAGES, SUMS_TASK, two_sums

    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="azureml/llama-blue", model_args={"base_url": f"{server.url}/score"},
                             log_dir=tmp_path / "logs", display="none", parallel_tool_calls=False)
    first, second = (r.json() for r in server.requests)
    assert "model" not in first and first["tools"] == [ADD_TOOL] and first["tool_choice"] == "required"
    assert first["parallel_tool_calls"] is False
    assert second["messages"] == SENT_BACK
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES
