"""mistral: the real `mistralai` SDK against a local server speaking Mistral's chat-completions
and embeddings API (the OpenAI shape at /v1/...), for Mistral's API and Mistral on Azure."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import (
    ChatMessageTool,
    ChatMessageUser,
    ContentImage,
    ContentReasoning,
    ContentText,
    GenerateConfig,
    ResponseSchema,
)
from evalkit.errors import EvalkitError, ModelArgsError
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.tool import ToolCall
from tests.providers.helpers import (
    RETRY_AFTER, check_cli_error, check_model_embed, check_not_retried, check_retried, cli_eval, cli_log,
    generate_and_close, isolate_env, numbered_texts,
)
from tests.providers.test_openai_tools import ADD_TOOL, SUMS_MESSAGES, SUMS_TASK, two_sums
from tests.servers.embeddings_server import letter_vector, openai_embeddings
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, completion, scripted

KEY = "mistral-key-0123456789"
AZURE_KEY = "azure-mistral-key-0123456789"
ENV = ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "AZUREAI_MISTRAL_API_KEY", "AZUREAI_MISTRAL_BASE_URL", "AZURE_MISTRAL_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key for Mistral's API."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, MISTRAL_API_KEY=KEY)


def mistral_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in Mistral's shape (`{"object": "error", "message": ...}`)."""
    return Reply(status, {"object": "error", "message": message, "type": "invalid_request_error", "code": None}, headers or {})


def mistral_embeddings(request: Request) -> Reply:
    """OpenAI's /embeddings reply with the `id` Mistral's SDK requires."""
    reply = openai_embeddings(request)
    reply.body["id"] = "emb-test"
    return reply


def test_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    config = GenerateConfig(max_tokens=8, temperature=0.2, top_p=0.9, stop_seqs=("END",), seed=7, num_choices=2,
                            frequency_penalty=0.1, presence_penalty=0.2,
                            response_schema=ResponseSchema(name="answer", json_schema={"type": "object"}, strict=True))
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("MISTRAL_BASE_URL", server.url)
        model = evalkit.get_model("mistral/mistral-large-latest")
        with pytest.warns(UserWarning, match="'mistral' does not support reasoning_tokens"):
            output = generate_and_close(model, [evalkit.ChatMessageSystem("Be brief."), ChatMessageUser("ANSWER: bonjour")],
                                        config.merge(GenerateConfig(top_k=5, reasoning_effort="low", reasoning_tokens=100)))
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "mistral-large-latest", "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ANSWER: bonjour"}],
        "max_tokens": 8, "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "random_seed": 7, "n": 2,
        "frequency_penalty": 0.1, "presence_penalty": 0.2, "top_k": 5, "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}},
    }
    assert [c.message.text for c in output.choices] == ["bonjour", "bonjour"]
    assert output.stop_reason == "stop" and output.model == "mistral-large-latest-served"
    assert output.usage is not None and (output.usage.input_tokens, output.usage.output_tokens) == (2, 2)


def test_thinking_chunks_and_finish_reasons() -> None:
    replies = [
        completion({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Paris, surely."}]},
                                {"type": "text", "text": "Paris"}]}, "length"),
        completion({"content": "The conversation is too long."}, "model_length"),
        completion({"content": "Par"}, "error"),
    ]
    with RecordingServer(scripted(replies, chat_reply)) as server:
        model = evalkit.get_model("mistral/magistral-small-latest", base_url=server.url)

        async def both() -> list[evalkit.ModelOutput]:
            try:
                return [await model.generate(prompt) for prompt in ("Capital of France?", "again", "and again")]
            finally:
                await model.aclose()

        thinking, full, failed = anyio.run(both)
    assert thinking.message.content == [ContentReasoning("Paris, surely."), ContentText("Paris")]
    assert thinking.stop_reason == "max_tokens" and thinking.completion == "Paris"
    assert full.stop_reason == "model_length" and failed.stop_reason == "error"


def test_logprobs() -> None:
    def token(text: str, logprob: float) -> dict[str, Any]:
        return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "token_id": 1}

    logprobs = {"content": [{**token("Hi", -0.25), "top_logprobs": [token("Hi", -0.25), token("Hey", -1.5)]}]}
    reply = completion({"content": "Hi"})
    reply.body["choices"][0]["logprobs"] = logprobs
    with RecordingServer(lambda request: reply) as server:
        model = evalkit.get_model("mistral/mistral-small-latest", base_url=server.url)
        output = generate_and_close(model, "Greet me.", GenerateConfig(top_logprobs=2))
    body = server.requests[0].json()
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    [only] = output.choices[0].logprobs or ()
    assert (only.token, only.logprob) == ("Hi", -0.25)
    assert [(t.token, t.logprob) for t in only.top_logprobs] == [("Hi", -0.25), ("Hey", -1.5)]


def test_model_args_reach_the_client_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_BASE_URL", "http://127.0.0.1:9")  # -M server_url wins over it
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("mistral/mistral-small-latest", server_url=server.url, timeout_ms=5000)
        assert generate_and_close(model, "ANSWER: constructor").completion == "constructor"
    assert len(server.requests) == 1
    with pytest.raises(ModelArgsError, match="bogus_option"):
        evalkit.get_model("mistral/mistral-small-latest", bogus_option=True)


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'mistral' needs MISTRAL_API_KEY"):
        evalkit.get_model("mistral/mistral-large-latest")


def test_mistral_on_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY")
    with pytest.raises(EvalkitError, match="AZUREAI_MISTRAL_API_KEY"):
        evalkit.get_model("mistral/azure/mistral-large-2411")
    monkeypatch.setenv("AZUREAI_MISTRAL_API_KEY", AZURE_KEY)
    with pytest.raises(EvalkitError, match="AZUREAI_MISTRAL_BASE_URL"):
        evalkit.get_model("mistral/azure/mistral-large-2411")
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("AZUREAI_MISTRAL_BASE_URL", f"{server.url}/models")
        output = generate_and_close(evalkit.get_model("mistral/azure/mistral-large-2411"), "ANSWER: azure")
    [request] = server.requests
    assert request.path == "/models/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {AZURE_KEY}"
    assert request.json()["model"] == "mistral-large-2411"
    assert output.completion == "azure"


def test_tool_loop_through_eval(tmp_path: Path) -> None:
    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="mistral/mistral-large-latest", model_args={"base_url": server.url},
                             log_dir=tmp_path / "logs", display="none", parallel_tool_calls=True)
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == second["tools"] == [ADD_TOOL]
    assert first["tool_choice"] == "any" and second["tool_choice"] == "auto"  # forced on the first call only
    assert first["parallel_tool_calls"] is True
    assert second["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}, "index": 0},
            {"id": "call_b", "type": "function", "function": {"name": "add", "arguments": '{"x": 3, "y": 4}'}, "index": 1},
        ], "prefix": False},
        {"role": "tool", "tool_call_id": "call_a", "name": "add", "content": "3"},
        {"role": "tool", "tool_call_id": "call_b", "name": "add", "content": "7"},
    ]
    assert log.status == "success" and log.footer["results"]["includes"]["accuracy"] == 1.0
    assert log.samples[0].chat_messages == SUMS_MESSAGES


def test_images_in_user_and_tool_messages(tmp_path: Path) -> None:
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    image = tmp_path / "dot.png"
    image.write_bytes(png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    messages = [
        ChatMessageUser([ContentText("ANSWER: seen"), ContentImage(str(image))]),
        evalkit.ChatMessageAssistant("", tool_calls=[ToolCall("call_1", "screenshot", {})]),
        ChatMessageTool([ContentText("taken"), ContentImage(uri)], tool_call_id="call_1", function="screenshot"),
    ]
    with RecordingServer(lambda request: completion({"content": "a dot"})) as server:
        assert generate_and_close(evalkit.get_model("mistral/pixtral-large-latest", base_url=server.url), messages).completion == "a dot"
    sent = server.requests[0].json()["messages"]
    assert sent[0]["content"] == [{"type": "text", "text": "ANSWER: seen"}, {"type": "image_url", "image_url": {"url": uri, "detail": "auto"}}]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "name": "screenshot", "content": [
        {"type": "text", "text": "taken"}, {"type": "image_url", "image_url": {"url": uri, "detail": "auto"}}]}
    assert len(sent) == 3  # the image is folded into the tool message: no user turn follows a tool turn


def large(url: str) -> evalkit.Model:
    return evalkit.get_model("mistral/mistral-large-latest", base_url=url)


@pytest.mark.parametrize(("reply", "error", "message"), [
    (Reply(401, {"message": "Unauthorized", "request_id": "r1"}), EvalkitError,
     r"^mistral: authentication failed \(HTTP 401\); check MISTRAL_API_KEY: Unauthorized$"),
    (mistral_error(400, "Invalid model: mistral-nope"), EvalkitError,
     r"^mistral: request rejected \(HTTP 400\): Invalid model: mistral-nope$"),
    (Reply(body='{"truncated": '), MalformedResponseError, "^mistral: "),
    (Reply(body={"id": "x", "object": "chat.completion"}), MalformedResponseError, "^mistral: "),
], ids=["401", "400", "not-json", "no-choices"])
def test_errors_no_retry_fixes_are_one_line(reply: Reply, error: type[Exception], message: str) -> None:
    check_not_retried(large, reply, message, error)


def test_rate_limits_and_server_errors_are_retried() -> None:  # the SDK itself retries nothing
    check_retried(large, [mistral_error(429, "Requests rate limit exceeded", {"Retry-After": str(RETRY_AFTER)}),
                          mistral_error(500, "Internal error"), Reply(drop=True)], chat_reply)


def test_embeddings_through_model_embed() -> None:
    vectors, requests = check_model_embed(lambda url: evalkit.get_model("mistral/mistral-embed", base_url=url),
                                          [mistral_error(429, "Requests rate limit exceeded", {"Retry-After": "0"})],
                                          mistral_embeddings, "input", batch=96)
    for request in requests:
        assert request.path == "/v1/embeddings" and request.headers["authorization"] == f"Bearer {KEY}"
        assert request.json()["model"] == "mistral-embed"
    assert vectors == [letter_vector(text) for text in numbered_texts(100)]  # in order, though listed last to first


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(lambda request: completion({"content": "Tokyo"})) as server:
        result = cli_eval("mistral/mistral-small-latest", tmp_path / "logs", "-M", "timeout_ms=30000",
                          env={"MISTRAL_BASE_URL": server.url, "MISTRAL_API_KEY": "cli-mistral-key"})
    cli_log(result, tmp_path / "logs", "cli-mistral-key")
    [request] = server.requests
    assert request.headers["authorization"] == "Bearer cli-mistral-key"
    body = request.json()
    assert body["model"] == "mistral-small-latest" and body["max_tokens"] == 32 and body["temperature"] == 0.0


def test_cli_bad_key_is_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda request: Reply(401, {"message": "Unauthorized"})) as server:
        result = cli_eval("mistral/mistral-small-latest", tmp_path / "logs",
                          env={"MISTRAL_BASE_URL": server.url, "MISTRAL_API_KEY": "wrong"})
    check_cli_error(result, "mistral: authentication failed (HTTP 401); check MISTRAL_API_KEY: Unauthorized")
