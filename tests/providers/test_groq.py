"""groq: the real groq SDK (AsyncGroq) against a local server speaking Groq's OpenAI-shaped
chat completions at /openai/v1, with GROQ_BASE_URL as the bare host the SDK takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import groq
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig
from evalkit.errors import EvalkitError, ModelArgsError
from evalkit.model import api
from evalkit.providers.common.http_errors import MalformedResponseError
from tests.providers.helpers import (
    NO_RETRIES, RETRY_AFTER, check_cli_error, check_gives_up, check_not_retried, check_retried, cli_eval, cli_log,
    generate_and_close, isolate_env,
)
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, error_reply

KEY = "gsk-test-0123456789"
PATH = "/openai/v1/chat/completions"


@pytest.fixture(autouse=True)
def groq_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A test key; no base URL from the machine or a .env file."""
    isolate_env(monkeypatch, tmp_path, unset=["GROQ_BASE_URL"], GROQ_API_KEY=KEY)


def groq_reply(request: Request) -> Reply:
    """`chat_reply` with what Groq adds: usage timings and x_groq."""
    reply = chat_reply(request)
    reply.body["usage"].update(queue_time=0.01, prompt_time=0.002, completion_time=0.03, total_time=0.042)
    reply.body.update(system_fingerprint="fp_test", x_groq={"id": "req_test"})
    return reply


def llama(url: str) -> evalkit.Model:
    return evalkit.get_model("groq/llama-3.3-70b-versatile", base_url=url)


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES) -> evalkit.ModelOutput:
    return generate_and_close(llama(server.url), input, gen)


def test_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(groq_reply) as server:
        monkeypatch.setenv("GROQ_BASE_URL", server.url)
        model = evalkit.get_model("groq/llama-3.3-70b-versatile", default_headers={"X-Team": "evals"},
                                  extra_body={"service_tier": "flex"})
        config = GenerateConfig(max_retries=0, max_tokens=8, temperature=0.5, top_p=0.9, stop_seqs=("\n\n",), seed=7,
                                frequency_penalty=0.1, presence_penalty=0.2, num_choices=1, reasoning_effort="low")
        output = generate_and_close(model, [ChatMessageSystem("Brief."), ChatMessageUser("ANSWER: Tokyo")], config)
    [request] = server.requests
    assert request.method == "POST" and request.path == PATH
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["x-team"] == "evals"
    assert request.json() == {
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "system", "content": "Brief."}, {"role": "user", "content": "ANSWER: Tokyo"}],
        "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "stop": ["\n\n"], "seed": 7, "frequency_penalty": 0.1,
        "presence_penalty": 0.2, "reasoning_effort": "low", "service_tier": "flex",
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and len(output.choices) == 1
    assert output.model == "llama-3.3-70b-versatile-served"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 2, "output_tokens": 1, "total_tokens": 3}
    assert output.metadata == {"id": "chatcmpl-test", "system_fingerprint": "fp_test", "created": 1, "queue_time": 0.01,
                               "prompt_time": 0.002, "completion_time": 0.03, "total_time": 0.042}


def test_max_tokens_stop_and_unsupported_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_warned", set())
    config = GenerateConfig(max_retries=0, max_tokens=1, top_k=5, num_choices=3)
    with RecordingServer(chat_reply) as server:
        with pytest.warns(UserWarning) as warned:
            output = generate(server, "ANSWER: one two three", config)
    assert sorted(str(w.message) for w in warned) == [
        "provider 'groq' does not support num_choices; it is dropped (Groq accepts only n=1)",
        "provider 'groq' does not support top_k; it is dropped",
    ]
    body = server.requests[0].json()
    assert "top_k" not in body and "n" not in body and body["max_tokens"] == 1  # Groq answers n > 1 with a 400
    assert output.completion == "one" and output.stop_reason == "max_tokens" and len(output.choices) == 1


def test_base_url_is_the_bare_host_and_the_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    assert evalkit.get_model("groq/m").api.base_url == "https://api.groq.com"
    monkeypatch.setenv("GROQ_BASE_URL", "https://api.groq.com/openai/v1")
    with pytest.raises(ModelArgsError, match="GROQ_BASE_URL is the bare host .*adds /openai/v1"):
        evalkit.get_model("groq/m")
    monkeypatch.delenv("GROQ_BASE_URL")
    monkeypatch.delenv("GROQ_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'groq' needs GROQ_API_KEY"):
        evalkit.get_model("groq/m")


def test_unknown_model_args_fail_at_once() -> None:
    with pytest.raises(EvalkitError, match="bogus"):
        evalkit.get_model("groq/m", bogus=1)


@pytest.mark.parametrize(("status", "message"), [
    (400, r"^groq: request rejected \(HTTP 400\): bad request$"),
    (401, r"^groq: authentication failed \(HTTP 401\); check GROQ_API_KEY: Invalid API Key$"),
    (404, r"^groq: model 'llama-3.3-70b-versatile' or its endpoint was not found \(HTTP 404\): no such model$"),
])
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    detail = {400: "bad request", 401: "Invalid API Key", 404: "no such model"}[status]
    check_not_retried(llama, error_reply(status, detail), message)


def test_rate_limit_waits_for_retry_after_and_server_errors_are_retried() -> None:
    check_retried(llama, [error_reply(429, "Rate limit reached", {"Retry-After": str(RETRY_AFTER)}), error_reply(500, "oops"),
                          Reply(drop=True)], chat_reply)


def test_rate_limit_reset_header_is_the_hint() -> None:
    check_retried(llama, [error_reply(429, "Rate limit reached", {"x-ratelimit-reset-tokens": f"{RETRY_AFTER}s"})], chat_reply)


def test_server_errors_give_up_after_the_retries() -> None:
    check_gives_up(llama, error_reply(503, "over capacity"), groq.InternalServerError)


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(body='{"truncated": '), "groq: the reply is not a JSON object"),
    (Reply(body={"id": "x"}), "groq: response has no choices"),
])
def test_malformed_replies_are_errors(reply: Reply, message: str) -> None:
    check_not_retried(llama, reply, message, MalformedResponseError)


def test_tool_loop_through_eval(tmp_path: Path) -> None:
    from tests.providers.test_openai_tools import ADD_TOOL, SENT_BACK, SUMS_MESSAGES, SUMS_TASK, two_sums

    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="groq/llama-3.3-70b-versatile", model_args={"base_url": server.url},
                             log_dir=tmp_path / "logs", display="none", parallel_tool_calls=True)
    first, second = server.requests
    assert first.path == second.path == PATH
    assert first.json()["tools"] == [ADD_TOOL] and first.json()["tool_choice"] == "required"
    assert first.json()["parallel_tool_calls"] is True
    assert second.json()["messages"] == SENT_BACK
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(groq_reply) as server:
        result = cli_eval("groq/llama-3.1-8b-instant", tmp_path / "logs", "-M", "default_headers={X-Run: cli}",
                          env={"GROQ_BASE_URL": server.url, "GROQ_API_KEY": "cli-groq-key"})
    log = cli_log(result, tmp_path / "logs", "cli-groq-key")
    [request] = server.requests
    assert request.path == PATH and request.headers["authorization"] == "Bearer cli-groq-key"
    assert request.headers["x-run"] == "cli" and request.json()["max_tokens"] == 32
    assert log.samples[0].output["metadata"]["queue_time"] == 0.01


def test_cli_bad_key_is_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda request: error_reply(401, "Invalid API Key")) as server:
        result = cli_eval("groq/llama-3.1-8b-instant", tmp_path / "logs", env={"GROQ_BASE_URL": server.url, "GROQ_API_KEY": "wrong"})
    check_cli_error(result, "groq: authentication failed (HTTP 401); check GROQ_API_KEY: Invalid API Key")