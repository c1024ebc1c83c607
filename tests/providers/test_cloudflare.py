"""cf: Cloudflare Workers AI's REST API (`POST {base}/{account}/ai/run/@cf/<model>`), served
locally, through httpx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import evalkit
from evalkit import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    ContentImage,
    ContentText,
    GenerateConfig,
    ResponseSchema,
)
from evalkit.errors import EvalkitError, ImagesUnsupportedError
from evalkit.providers.common.http_errors import MalformedResponseError, ProviderRequestError
from evalkit.tool import ToolCall
from tests.providers.helpers import (
    NO_RETRIES, RETRY_AFTER, check_cli_error, check_gives_up, check_not_retried, check_retried, cli_eval, cli_log,
    generate_and_close, generate_once, isolate_env,
)
from tests.servers.cloudflare_server import envelope, error_envelope, run_reply
from tests.servers.http import RecordingServer, Reply, Request
from tests.tools import ADD_PARAMETERS

ACCOUNT = "0123abcd4567ef"
TOKEN = "cf-token-0123456789"
MODEL = "meta/llama-3.1-8b-instruct"
PATH = f"/client/v4/accounts/{ACCOUNT}/ai/run/@cf/{MODEL}"


@pytest.fixture(autouse=True)
def cloudflare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A test account and token; no base URL from the machine or a .env file."""
    isolate_env(monkeypatch, tmp_path, unset=["CLOUDFLARE_BASE_URL"], CLOUDFLARE_ACCOUNT_ID=ACCOUNT, CLOUDFLARE_API_TOKEN=TOKEN)


def base(server: RecordingServer) -> str:
    return f"{server.url}/client/v4/accounts"


def llama(url: str) -> evalkit.Model:
    return evalkit.get_model(f"cf/{MODEL}", base_url=f"{url}/client/v4/accounts")


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, model: str = MODEL, **model_args: Any) -> evalkit.ModelOutput:
    return generate_once(f"cf/{model}", input, gen, base_url=base(server), **model_args)


def test_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(run_reply) as server:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", base(server))
        model = evalkit.get_model(f"cf/{MODEL}", config=GenerateConfig(timeout=10), repetition_penalty=1.1, lora="my-adapter")
        config = GenerateConfig(max_retries=0, max_tokens=30, temperature=0.5, top_p=0.9, top_k=5, seed=1,
                                frequency_penalty=0.1, presence_penalty=0.2)
        output = generate_and_close(model, [ChatMessageSystem("Brief."), ChatMessageUser("ANSWER: Tokyo")], config)
    [request] = server.requests
    assert request.method == "POST" and request.path == PATH
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "messages": [{"role": "system", "content": "Brief."}, {"role": "user", "content": "ANSWER: Tokyo"}],
        "max_tokens": 30, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "seed": 1, "frequency_penalty": 0.1,
        "presence_penalty": 0.2, "repetition_penalty": 1.1, "lora": "my-adapter",
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == f"cf/{MODEL}"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 2, "output_tokens": 1, "total_tokens": 3}


def test_defaults_named_models_and_unsupported_settings() -> None:
    with RecordingServer(run_reply) as server:
        with pytest.warns(UserWarning, match="'cf' does not support stop_seqs"):
            output = generate(server, "ANSWER: yes", GenerateConfig(max_retries=0, stop_seqs=("\n",)),
                              model="@hf/nousresearch/hermes-2-pro-mistral-7b", extra_headers={"X-Team": "evals"})
    [request] = server.requests
    assert request.path == f"/client/v4/accounts/{ACCOUNT}/ai/run/@hf/nousresearch/hermes-2-pro-mistral-7b"
    assert request.headers["x-team"] == "evals"
    assert request.json() == {"messages": [{"role": "user", "content": "ANSWER: yes"}], "max_tokens": 2048}
    assert output.completion == "yes" and output.usage is not None


def test_json_mode_sends_the_schema_and_reads_the_object_back() -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    with RecordingServer(lambda request: envelope({"capital": "Tokyo"})) as server:
        output = generate(server, "Capital of Japan?", GenerateConfig(max_retries=0, response_schema=ResponseSchema("city", schema)))
    assert server.requests[0].json()["response_format"] == {"type": "json_schema", "json_schema": schema}
    assert json.loads(output.completion) == {"capital": "Tokyo"} and output.usage is None


def test_images_are_refused_with_one_line() -> None:
    image = ContentImage("data:image/png;base64,iVBORw0KGgo=")
    with RecordingServer(run_reply) as server:
        with pytest.raises(ImagesUnsupportedError, match="^Workers AI takes text only, but a user message holds an image"):
            generate(server, [ChatMessageUser([ContentText("What is this?"), image])])
    assert server.requests == []


def test_missing_settings_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert evalkit.get_model(f"cf/{MODEL}").api.url == f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai/run/@cf/{MODEL}"
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(EvalkitError, match="provider 'cf' needs CLOUDFLARE_API_TOKEN"):
        evalkit.get_model(f"cf/{MODEL}")
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID")
    with pytest.raises(EvalkitError, match="provider 'cf' needs CLOUDFLARE_ACCOUNT_ID"):
        evalkit.get_model(f"cf/{MODEL}")


@pytest.mark.parametrize(("status", "message"), [
    (400, r"^cf: request rejected \(HTTP 400\): Bad input: must have required property 'messages'$"),
    (401, r"^cf: authentication failed \(HTTP 401\); check CLOUDFLARE_API_TOKEN: Authentication error$"),
    (404, rf"^cf: model '{MODEL}' or its endpoint was not found \(HTTP 404\): No route for that URI$"),
])
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    detail = {400: "Bad input: must have required property 'messages'", 401: "Authentication error", 404: "No route for that URI"}
    check_not_retried(llama, error_envelope(status, detail[status]), message)


def test_rate_limit_waits_for_retry_after_and_server_errors_are_retried() -> None:
    check_retried(llama, [error_envelope(429, "Capacity temporarily exceeded", 3040, {"Retry-After": str(RETRY_AFTER)}),
                          error_envelope(500, "Internal server error", 3043), Reply(drop=True)], run_reply)


def test_server_errors_give_up_after_the_retries() -> None:
    check_gives_up(llama, error_envelope(502, "Bad gateway"), httpx.HTTPStatusError)


@pytest.mark.parametrize(("reply", "error", "message"), [
    (Reply(200, "<html>oops</html>"), MalformedResponseError, "cf/meta/llama-3.1-8b-instruct: response is not JSON"),
    (Reply(body={"success": True, "errors": []}), MalformedResponseError, "response has no result"),
    (Reply(body={"result": {"usage": {}}, "success": True}), MalformedResponseError, "choice has no message.content text"),
    (error_envelope(200, "Model is warming up"), ProviderRequestError, "^cf/meta/llama-3.1-8b-instruct: request failed: Model is warming up$"),
])
def test_malformed_and_failed_replies_are_errors(reply: Reply, error: type[Exception], message: str) -> None:
    check_not_retried(llama, reply, message, error)


def two_sums(request: Request) -> Reply:
    """Workers AI asking for add(1, 2) and add(3, 4) (its flat tool-call shape), then answering."""
    messages = request.json()["messages"]
    if messages[-1]["role"] == "user":
        return envelope(None, tool_calls=[{"name": "add", "arguments": {"x": 1, "y": 2}},
                                          {"name": "add", "arguments": {"x": 3, "y": 4}}])
    results = [m["content"] for m in messages if m["role"] == "tool"]
    return envelope(f"The sums are {' and '.join(results)}.", usage={"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36})


def test_tool_loop_through_eval(tmp_path: Path) -> None:
    from tests.providers.test_openai_tools import SUMS_TASK

    with RecordingServer(two_sums) as server:
        with pytest.warns(UserWarning, match="'cf' does not support tool_choice"):
            [log] = evalkit.eval(SUMS_TASK, model=f"cf/{MODEL}", model_args={"base_url": base(server)},
                                 log_dir=tmp_path / "logs", display="none")
    first, second = (r.json() for r in server.requests)
    add_tool = {"name": "add", "description": "Add two whole numbers.", "parameters": ADD_PARAMETERS}
    assert first["tools"] == second["tools"] == [add_tool] and "tool_choice" not in first
    assert second["messages"] == [
        {"role": "user", "content": "What are 1 + 2 and 3 + 4?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}},
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"x": 3, "y": 4}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_0", "content": "3", "name": "add"},
        {"role": "tool", "tool_call_id": "call_1", "content": "7", "name": "add"},
    ]
    assert log.status == "success" and log.footer["results"]["includes"]["accuracy"] == 1.0
    assert log.samples[0].chat_messages[1:] == [
        ChatMessageAssistant("", tool_calls=[ToolCall("call_0", "add", {"x": 1, "y": 2}), ToolCall("call_1", "add", {"x": 3, "y": 4})]),
        ChatMessageTool("3", tool_call_id="call_0", function="add"),
        ChatMessageTool("7", tool_call_id="call_1", function="add"),
        ChatMessageAssistant("The sums are 3 and 7."),
    ]


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(run_reply) as server:
        result = cli_eval(f"cf/{MODEL}", tmp_path / "logs", "-M", "repetition_penalty=1.2", env={
            "CLOUDFLARE_BASE_URL": base(server), "CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": "cli-cf-token"})
    cli_log(result, tmp_path / "logs", "cli-cf-token")
    [request] = server.requests
    assert request.path == PATH and request.headers["authorization"] == "Bearer cli-cf-token"
    body = request.json()
    assert body["max_tokens"] == 32 and body["temperature"] == 0.0 and body["repetition_penalty"] == 1.2
    assert body["messages"][0] == {"role": "system", "content": "Answer in a few words."}


def test_cli_bad_token_is_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda request: error_envelope(401, "Authentication error")) as server:
        result = cli_eval(f"cf/{MODEL}", tmp_path / "logs", env={
            "CLOUDFLARE_BASE_URL": base(server), "CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": "wrong"})
    check_cli_error(result, "cf: authentication failed (HTTP 401); check CLOUDFLARE_API_TOKEN: Authentication error")