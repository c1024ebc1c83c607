"""azureai: the real `azure-ai-inference` async clients against a local server speaking the
Azure AI model inference API (/chat/completions and /embeddings with ?api-version=), tools
native and emulated in the prompt."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, ResponseSchema
from evalkit.errors import EvalkitError
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.tool import ToolCall
from tests.providers.helpers import (
    RETRY_AFTER, check_model_embed, check_not_retried, check_retried, cli_eval, cli_log, generate_and_close,
    isolate_env, numbered_texts,
)
from tests.providers.test_openai_tools import ADD_TOOL, SENT_BACK, SUMS_MESSAGES, SUMS_TASK, two_sums
from tests.servers.embeddings_server import letter_vector, openai_embeddings
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, completion, error_reply

KEY = "azureai-key-0123456789"
API_VERSION = "api-version=2024-05-01-preview"
ENV = ("AZUREAI_API_KEY", "AZUREAI_BASE_URL", "AZURE_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, AZUREAI_API_KEY=KEY)


def emulated_sums(request: Request) -> Reply:
    """A model without native tool calling: it writes the `<tool_call>` lines the system prompt
    taught it, then answers from the `<tool_response>` blocks it is sent back."""
    messages = request.json()["messages"]
    last = messages[-1]["content"]
    if "<tool_response>" not in last:
        return completion({"content": 'Let me add.\n<tool_call>{"name": "add", "arguments": {"x": 1, "y": 2}}</tool_call>\n'
                                      '<tool_call>{"name": "add", "arguments": {"x": 3, "y": 4}}</tool_call>'})
    results = [json.loads(body)["content"] for body in re.findall(r"<tool_response>\n(.*?)\n</tool_response>", last)]
    return completion({"content": f"The sums are {' and '.join(results)}."})


def test_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    config = GenerateConfig(max_tokens=8, temperature=0.2, top_p=0.9, stop_seqs=("END",), seed=7, frequency_penalty=0.1,
                            presence_penalty=0.2, response_schema=ResponseSchema(name="answer", json_schema={"type": "object"}))
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("AZUREAI_BASE_URL", f"{server.url}/models")
        model = evalkit.get_model("azureai/Phi-4")
        with pytest.warns(UserWarning, match="'azureai' does not support num_choices"):
            output = generate_and_close(model, [ChatMessageSystem("Be brief."), ChatMessageUser("ANSWER: hello")],
                                        config.merge(GenerateConfig(num_choices=2)))
    [request] = server.requests
    assert request.path == f"/models/chat/completions?{API_VERSION}"
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["api-key"] == KEY
    assert request.json() == {
        "model": "Phi-4", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ANSWER: hello"}],
        "max_tokens": 8, "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "seed": 7, "frequency_penalty": 0.1,
        "presence_penalty": 0.2, "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    }
    assert output.completion == "hello" and output.stop_reason == "stop" and output.model == "Phi-4-served"
    assert output.usage is not None and (output.usage.input_tokens, output.usage.output_tokens) == (2, 1)


def test_model_args_reach_the_client_constructor() -> None:
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("azureai/Phi-4", base_url=server.url, api_version="2024-08-01-preview",
                                  headers={"x-ms-useragent": "evalkit-test"}, temperature=0.1)
        assert generate_and_close(model, "ANSWER: constructor").completion == "constructor"
    [request] = server.requests
    assert request.path == "/chat/completions?api-version=2024-08-01-preview"
    assert request.headers["x-ms-useragent"] == "evalkit-test" and request.headers["api-key"] == KEY
    assert request.json()["model"] == "Phi-4" and request.json()["temperature"] == 0.1  # the client's default


def test_missing_settings_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EvalkitError, match="provider 'azureai' needs AZUREAI_BASE_URL"):
        evalkit.get_model("azureai/Phi-4")
    monkeypatch.delenv("AZUREAI_API_KEY")
    monkeypatch.setenv("AZUREAI_BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(EvalkitError, match="provider 'azureai' needs AZUREAI_API_KEY"):
        evalkit.get_model("azureai/Phi-4")
    with pytest.raises(EvalkitError, match="emulate_tools must be true or false"):
        evalkit.get_model("azureai/Phi-4", api_key="k", emulate_tools="sometimes")


def test_native_tool_loop_through_eval(tmp_path: Path) -> None:
    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="azureai/Phi-4", model_args={"base_url": server.url},
                             log_dir=tmp_path / "logs", display="none")
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == second["tools"] == [ADD_TOOL]
    assert first["tool_choice"] == "required" and second["tool_choice"] == "auto"
    assert first["messages"] == SENT_BACK[:1] and second["messages"] == SENT_BACK
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES


@pytest.mark.filterwarnings("ignore:provider 'azureai' does not support tool_choice")  # SUMS_TASK forces the first call
@pytest.mark.parametrize(("deployment", "model_args"), [("Llama-3.3-70B-Instruct", {}), ("Phi-4", {"emulate_tools": True})],
                         ids=["llama-default", "opted-in"])
def test_emulated_tool_loop_through_eval(tmp_path: Path, deployment: str, model_args: dict[str, Any]) -> None:
    with RecordingServer(emulated_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model=f"azureai/{deployment}", model_args={"base_url": server.url, **model_args},
                             log_dir=tmp_path / "logs", display="none")
    first, second = (r.json() for r in server.requests)
    assert "tools" not in first and "tool_choice" not in first
    assert first["messages"][0]["role"] == "system" and '"name": "add"' in first["messages"][0]["content"]
    assert "<tool_call>" in first["messages"][0]["content"]
    assert second["messages"][2]["role"] == "assistant" and second["messages"][2]["content"].count("<tool_call>") == 2
    assert second["messages"][3] == {"role": "user", "content": (
        '<tool_response>\n{"name": "add", "content": "3"}\n</tool_response>\n'
        '<tool_response>\n{"name": "add", "content": "7"}\n</tool_response>')}
    assert log.status == "success" and log.footer["results"]["includes"]["accuracy"] == 1.0
    [sample] = log.samples
    calls = sample.chat_messages[1].tool_calls
    assert [(c.function, c.arguments) for c in calls] == [("add", {"x": 1, "y": 2}), ("add", {"x": 3, "y": 4})]
    assert sample.chat_messages[1].text == "Let me add." and sample.output["completion"] == "The sums are 3 and 7."


def test_emulation_can_be_turned_off_for_llama(tmp_path: Path) -> None:
    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="azureai/Llama-3.3-70B-Instruct",
                             model_args={"base_url": server.url, "emulate_tools": False}, log_dir=tmp_path / "logs", display="none")
    assert server.requests[0].json()["tools"] == [ADD_TOOL]
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES


def test_emulated_tool_call_with_bad_json_is_shown_to_the_model() -> None:
    reply = completion({"content": '<tool_call>{"name": "add", "arguments": {"x": 1,</tool_call>'})
    with RecordingServer(lambda request: reply) as server:
        model = evalkit.get_model("azureai/Meta-Llama-3.1-8B-Instruct", base_url=server.url)
        from tests.tools import add

        async def ask() -> evalkit.ModelOutput:
            try:
                return await model.generate("What is 1 + 2?", tools=[add()])
            finally:
                await model.aclose()

        output = anyio.run(ask)
    [call] = output.message.tool_calls or []
    assert isinstance(call, ToolCall) and call.function == "add" and call.parse_error
    assert output.stop_reason == "tool_calls"


def phi4(url: str) -> evalkit.Model:
    return evalkit.get_model("azureai/Phi-4", base_url=url)


@pytest.mark.parametrize(("reply", "error", "message"), [
    (error_reply(401, "Access denied due to invalid subscription key"), EvalkitError,
     r"^azureai: authentication failed \(HTTP 401\); check AZUREAI_API_KEY: Access denied due to invalid subscription key$"),
    (Reply(body='{"truncated": '), MalformedResponseError, "^azureai: "),
    (Reply(body={"id": "x", "object": "chat.completion"}), MalformedResponseError, "^azureai: .*no choices"),
], ids=["401", "not-json", "no-choices"])
def test_errors_no_retry_fixes_are_one_line(reply: Reply, error: type[Exception], message: str) -> None:
    check_not_retried(phi4, reply, message, error)


def test_rate_limits_and_server_errors_are_retried() -> None:  # the SDK itself retries nothing
    check_retried(phi4, [error_reply(429, "Rate limit is exceeded", {"Retry-After": str(RETRY_AFTER)}),
                         error_reply(500, "Internal error"), Reply(drop=True)], chat_reply)


def test_embeddings_through_model_embed() -> None:
    vectors, requests = check_model_embed(lambda url: evalkit.get_model("azureai/embed-v-4-0", base_url=f"{url}/models"),
                                          [error_reply(429, "Rate limit is exceeded", {"Retry-After": "0"})],
                                          openai_embeddings, "input", batch=96)
    for request in requests:
        assert request.path == f"/models/embeddings?{API_VERSION}" and request.headers["api-key"] == KEY
        assert request.json()["model"] == "embed-v-4-0"
    assert vectors == [letter_vector(text) for text in numbered_texts(100)]  # in order, though listed last to first


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(lambda request: completion({"content": "Tokyo"})) as server:
        result = cli_eval("azureai/Phi-4", tmp_path / "logs", "-M", "api_version=2024-08-01-preview", "-M", "emulate_tools=true",
                          env={"AZUREAI_BASE_URL": f"{server.url}/models", "AZUREAI_API_KEY": "cli-azureai-key"})
    cli_log(result, tmp_path / "logs", "cli-azureai-key")
    [request] = server.requests
    assert request.path == "/models/chat/completions?api-version=2024-08-01-preview"
    assert request.headers["api-key"] == "cli-azureai-key" and request.json()["max_tokens"] == 32
