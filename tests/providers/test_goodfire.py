"""goodfire: Goodfire's chat completions API (`POST /api/inference/v1/chat/completions`, the
endpoint the goodfire SDK calls), served locally, through httpx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, Sample, Task
from evalkit.errors import EvalkitError, ToolsUnsupportedError
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.solver import generate as generate_solver, use_tools
from tests.providers.helpers import (
    NO_RETRIES, RETRY_AFTER, check_cli_error, check_gives_up, check_not_retried, check_retried, cli_eval, cli_log,
    generate_and_close, generate_once, isolate_env,
)
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import answer, error_reply
from tests.tools import add

KEY = "gf-key-0123456789"
MODEL = "meta-llama/Llama-3.3-70B-Instruct"
PATH = "/api/inference/v1/chat/completions"
CONTROLLER = {"edits": [[{"index_in_sae": 123, "label": "pirate speech"}, 0.5]], "scopes": []}
"""A variant's feature edits, as `variant.controller.json()` gives them."""


@pytest.fixture(autouse=True)
def goodfire_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A test key; no base URL from the machine or a .env file."""
    isolate_env(monkeypatch, tmp_path, unset=["GOODFIRE_BASE_URL"], GOODFIRE_API_KEY=KEY)


def chat_reply(request: Request, usage: bool = True) -> Reply:
    """A Goodfire chat completion answering the last user message (no finish_reason, as the API leaves it out)."""
    body = request.json()
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    text = answer(prompt)
    reply: dict[str, Any] = {"id": "gf-1", "object": "chat.completion", "created": 1, "model": body["model"],
                             "system_fingerprint": "gf", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                                     "finish_reason": None}]}
    if usage:
        reply["usage"] = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                          "total_tokens": len(prompt.split()) + len(text.split())}
    return Reply(body=reply)


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, model: str = MODEL, **model_args: Any) -> evalkit.ModelOutput:
    return generate_once(f"goodfire/{model}", input, gen, base_url=server.url, **model_args)


def test_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("GOODFIRE_BASE_URL", server.url)
        model = evalkit.get_model(f"goodfire/{MODEL}", controller=CONTROLLER, extra_headers={"X-Team": "evals"})
        config = GenerateConfig(max_retries=0, max_tokens=30, temperature=0.5, top_p=0.9, stop_seqs=("<|eot_id|>",), seed=42)
        output = generate_and_close(model, [ChatMessageSystem("Brief."), ChatMessageUser("ANSWER: Tokyo")], config)
    [request] = server.requests
    assert request.method == "POST" and request.path == PATH
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["x-team"] == "evals"
    assert request.json() == {
        "model": MODEL, "stream": False,
        "messages": [{"role": "system", "content": "Brief."}, {"role": "user", "content": "ANSWER: Tokyo"}],
        "max_completion_tokens": 30, "temperature": 0.5, "top_p": 0.9, "stop": ["<|eot_id|>"], "seed": 42,
        "controller": CONTROLLER,
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == f"goodfire/{MODEL}"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 2, "output_tokens": 1, "total_tokens": 3}


def test_short_model_name_defaults_and_unsupported_settings() -> None:
    with RecordingServer(lambda request: chat_reply(request, usage=False)) as server:
        with pytest.warns(UserWarning, match="'goodfire' does not support top_k"):
            output = generate(server, "ANSWER: yes", GenerateConfig(max_retries=0, top_k=3), model="Llama-3.3-70B-Instruct")
    assert server.requests[0].json() == {"model": MODEL, "stream": False, "messages": [{"role": "user", "content": "ANSWER: yes"}],
                                         "max_completion_tokens": 4096}
    assert output.completion == "yes" and output.usage is None


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert evalkit.get_model(f"goodfire/{MODEL}").api.url == f"https://api.goodfire.ai{PATH}"
    monkeypatch.delenv("GOODFIRE_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'goodfire' needs GOODFIRE_API_KEY"):
        evalkit.get_model(f"goodfire/{MODEL}")


def test_tools_are_refused_with_one_line(tmp_path: Path) -> None:
    task = Task(dataset=[Sample(input="1 + 2?", target="3")], solver=[use_tools(add()), generate_solver()])
    with RecordingServer(chat_reply) as server:
        [log] = evalkit.eval(task, model=f"goodfire/{MODEL}", model_args={"base_url": server.url},
                             log_dir=tmp_path / "logs", display="none")
    assert server.requests == [] and log.status == "error" and "\n" not in log.error
    assert f"{ToolsUnsupportedError.__name__}: provider 'goodfire' cannot call tools (goodfire/{MODEL})" in log.error


def llama(url: str) -> evalkit.Model:
    return evalkit.get_model(f"goodfire/{MODEL}", base_url=url)


@pytest.mark.parametrize(("status", "message"), [
    (400, r"^goodfire: request rejected \(HTTP 400\): Invalid model$"),
    (401, r"^goodfire: authentication failed \(HTTP 401\); check GOODFIRE_API_KEY: Invalid API key\.$"),
])
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    check_not_retried(llama, error_reply(status, {400: "Invalid model", 401: "Invalid API key."}[status]), message)


def test_rate_limit_waits_for_retry_after_and_server_errors_are_retried() -> None:
    check_retried(llama, [Reply(429, "You have hit your rate limit.", {"Retry-After": str(RETRY_AFTER)}),
                          Reply(500, "Server error")], chat_reply)


def test_server_errors_give_up_after_the_retries() -> None:
    check_gives_up(llama, Reply(503, "unavailable"), httpx.HTTPStatusError)


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(200, "not json"), "response is not JSON"),
    (Reply(body={"id": "x", "choices": []}), "response has no choices"),
])
def test_malformed_replies_are_errors(reply: Reply, message: str) -> None:
    check_not_retried(llama, reply, message, MalformedResponseError)


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(chat_reply) as server:
        result = cli_eval("goodfire/Llama-3.3-70B-Instruct", tmp_path / "logs", "-M", "controller={edits: []}",
                          env={"GOODFIRE_BASE_URL": server.url, "GOODFIRE_API_KEY": "cli-gf-key"})
    cli_log(result, tmp_path / "logs", "cli-gf-key")
    [request] = server.requests
    assert request.path == PATH and request.headers["authorization"] == "Bearer cli-gf-key"
    body = request.json()
    assert body["model"] == MODEL and body["max_completion_tokens"] == 32 and body["controller"] == {"edits": []}


def test_cli_bad_key_is_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda request: error_reply(401, "Invalid API key.")) as server:
        result = cli_eval(f"goodfire/{MODEL}", tmp_path / "logs", env={"GOODFIRE_BASE_URL": server.url, "GOODFIRE_API_KEY": "wrong"})
    check_cli_error(result, "goodfire: authentication failed (HTTP 401); check GOODFIRE_API_KEY: Invalid API key.")