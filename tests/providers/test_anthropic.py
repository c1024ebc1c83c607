"""The anthropic provider: the real anthropic SDK talking HTTP to a local Messages API server,
directly and in its Bedrock and Vertex forms."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig
from evalkit.errors import EvalkitError, ModelArgsError
from tests.conftest import run_cli
from tests.providers.helpers import RETRY_AFTER, generate_and_close, isolate_env, quiz_task_source, waited_for_hint
from tests.servers.anthropic_server import messages_reply
from tests.servers.http import RecordingServer, Reply
from tests.servers.openai_server import error_reply, scripted

KEY = "sk-ant-test-0123456789"
ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_REGION",
       "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
       "AWS_BEARER_TOKEN_BEDROCK", "ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_VERTEX_REGION", "ANTHROPIC_VERTEX_BASE_URL",
       "CLOUD_ML_REGION")

TASK = quiz_task_source(count=5, factor=3)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, ANTHROPIC_API_KEY=KEY)


def test_messages_request_and_reply() -> None:
    messages = [
        ChatMessageSystem("Be brief."),
        ChatMessageUser("First part."),
        ChatMessageUser("Second part."),
        ChatMessageAssistant("Noted."),
        ChatMessageSystem("Use digits."),
        ChatMessageUser("Now answer. ANSWER: forty two STOP ignored"),
    ]
    config = GenerateConfig(max_tokens=10, temperature=0.2, top_p=0.8, top_k=20, stop_seqs=(" STOP",))
    with RecordingServer(messages_reply) as server:
        output = generate_and_close(evalkit.get_model("anthropic/claude-sonnet-4-5", base_url=server.url), messages, config)
    [request] = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == f"Bearer {KEY}"  # how anthropic 2.x sends the key
    assert request.headers["anthropic-version"]
    assert request.json() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": "Be brief.\n\nUse digits.",
        "messages": [
            {"role": "user", "content": "First part.\n\nSecond part."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Now answer. ANSWER: forty two STOP ignored"},
        ],
        "temperature": 0.2, "top_p": 0.8, "top_k": 20, "stop_sequences": [" STOP"],
    }
    assert output.completion == "forty two"
    assert output.stop_reason == "stop"
    assert output.model == "claude-sonnet-4-5"
    assert output.usage == evalkit.ModelUsage(input_tokens=7 + 2 + 3, output_tokens=2, total_tokens=14)


def test_default_max_tokens_and_max_tokens_stop() -> None:
    with RecordingServer(messages_reply) as server:
        model = evalkit.get_model("anthropic/claude-haiku-4-5", base_url=server.url)
        assert generate_and_close(model, "ANSWER: short").completion == "short"
        cut = generate_and_close(model, "ANSWER: one two three", GenerateConfig(max_tokens=2))
    assert server.requests[0].json()["max_tokens"] == 4096
    assert (cut.completion, cut.stop_reason) == ("one two", "max_tokens")


@pytest.mark.parametrize(
    ("field", "value"),
    [("seed", 3), ("frequency_penalty", 0.5), ("presence_penalty", 0.5), ("num_choices", 2), ("logprobs", True),
     ("top_logprobs", 3)],
)
def test_unsupported_fields_are_dropped_with_a_warning(field: str, value: Any) -> None:
    with RecordingServer(messages_reply) as server:
        model = evalkit.get_model("anthropic/claude-haiku-4-5", base_url=server.url)
        with pytest.warns(UserWarning, match=f"'anthropic' does not support {field}"):
            output = generate_and_close(model, "ANSWER: kept", GenerateConfig(**{field: value}))
    body = server.requests[0].json()
    assert set(body) == {"model", "max_tokens", "messages"}
    assert output.completion == "kept"


def test_stop_reasons_are_mapped() -> None:
    replies = {
        "refusal": "content_filter", "max_tokens": "max_tokens", "end_turn": "stop", "pause_turn": "unknown",
    }

    def handler(request: Any) -> Reply:
        reason = request.json()["messages"][-1]["content"]
        return Reply(body={"id": "m", "type": "message", "role": "assistant", "model": "claude", "stop_reason": reason,
                           "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "ok"}],
                           "usage": {"input_tokens": 1, "output_tokens": 1}})

    with RecordingServer(handler) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url)

        async def run() -> list[tuple[str, str]]:
            outputs = [await model.generate(reason) for reason in replies]
            await model.aclose()
            return [(o.completion, o.stop_reason) for o in outputs]

        assert asyncio.run(run()) == [("ok", expected) for expected in replies.values()]


def test_model_args_reach_the_client_constructor() -> None:
    with RecordingServer(messages_reply) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url, default_headers={"anthropic-beta": "test-beta"},
                                  timeout=5)
        assert generate_and_close(model, "ANSWER: beta").completion == "beta"
    assert server.requests[0].headers["anthropic-beta"] == "test-beta"
    with pytest.raises(ModelArgsError, match="bogus_option"):
        evalkit.get_model("anthropic/claude", bogus_option=True)


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(EvalkitError, match="ANTHROPIC_API_KEY"):
        evalkit.get_model("anthropic/claude")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "anthropic: request rejected \\(HTTP 400\\): messages: roles must alternate"),
        (401, "anthropic: authentication failed \\(HTTP 401\\); check ANTHROPIC_API_KEY: invalid x-api-key"),
        (404, "anthropic: model 'claude-nope' or its endpoint was not found \\(HTTP 404\\): model: claude-nope"),
    ],
)
def test_client_errors_are_clear_and_not_retried(status: int, message: str) -> None:
    detail = {400: "messages: roles must alternate", 401: "invalid x-api-key", 404: "model: claude-nope"}[status]
    with RecordingServer(lambda request: error_reply(status, detail)) as server:
        model = evalkit.get_model("anthropic/claude-nope", base_url=server.url)
        with pytest.raises(EvalkitError, match=message):
            generate_and_close(model, "ANSWER: never")
    assert len(server.requests) == 1 and model.retries == 0


def test_rate_limits_overload_and_dropped_connections_are_retried() -> None:
    replies = [
        error_reply(429, "rate limited", {"Retry-After": str(RETRY_AFTER)}),  # first: an ignored hint waits <= 1 s
        Reply(drop=True),
        error_reply(529, "overloaded", {"Retry-After": "0"}),
    ]
    with RecordingServer(scripted(replies, messages_reply)) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url)
        output = generate_and_close(model, "ANSWER: eventually")
    assert output.completion == "eventually"
    assert model.retries == 3 and len(server.requests) == 4
    assert waited_for_hint(server.requests[0], server.requests[1])


def test_rate_limit_reset_header_is_the_hint_without_retry_after() -> None:
    moment = datetime.now(timezone.utc) + timedelta(seconds=RETRY_AFTER + 0.5)
    reset = {"anthropic-ratelimit-requests-reset": moment.isoformat().replace("+00:00", "Z")}
    with RecordingServer(scripted([error_reply(429, "rate limited", reset)], messages_reply)) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url)
        assert generate_and_close(model, "ANSWER: reset").completion == "reset"
    assert waited_for_hint(server.requests[0], server.requests[1])


def test_malformed_replies_are_clear_errors() -> None:
    with RecordingServer(lambda request: Reply(body='{"truncated": ')) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url)
        with pytest.raises(Exception, match="anthropic: the reply is not a JSON object"):
            generate_and_close(model, "ANSWER: never")
    with RecordingServer(lambda request: Reply(body={"type": "message"})) as server:
        model = evalkit.get_model("anthropic/claude", base_url=server.url)
        with pytest.raises(Exception, match="anthropic: the reply has no 'content' list"):
            generate_and_close(model, "ANSWER: never")


def test_bedrock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-0123456789")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    with RecordingServer(messages_reply) as server:
        monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", server.url)
        model = evalkit.get_model("anthropic/bedrock/anthropic.claude-3-5-haiku-20241022-v1:0")
        output = generate_and_close(model, "ANSWER: bedrock", GenerateConfig(max_tokens=5))
    [request] = server.requests
    assert request.path == "/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIATESTTESTTEST/")
    assert "/eu-west-2/bedrock/" in request.headers["authorization"]
    body = request.json()
    assert body["anthropic_version"] and "model" not in body and body["max_tokens"] == 5  # the SDK's Bedrock form
    assert output.completion == "bedrock"


def test_bedrock_needs_a_region() -> None:
    with pytest.raises(EvalkitError, match="AWS_REGION"):
        evalkit.get_model("anthropic/bedrock/anthropic.claude-v2")


def test_vertex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "my-project")
    monkeypatch.setenv("ANTHROPIC_VERTEX_REGION", "us-east5")
    with RecordingServer(messages_reply) as server:
        monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", server.url)
        model = evalkit.get_model("anthropic/vertex/claude-sonnet-4@20250514", access_token="ya29.test-token")
        output = generate_and_close(model, "ANSWER: vertex")
    [request] = server.requests
    assert request.path == "/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    assert request.headers["authorization"] == "Bearer ya29.test-token"
    assert request.json()["anthropic_version"] and "model" not in request.json()  # the SDK's Vertex form
    assert output.completion == "vertex"


def test_vertex_needs_a_region() -> None:
    with pytest.raises(EvalkitError, match="ANTHROPIC_VERTEX_REGION"):
        evalkit.get_model("anthropic/vertex/claude")


def test_cli_eval_through_anthropic(tmp_path: Path) -> None:
    (tmp_path / "quiz.py").write_text(TASK)
    with RecordingServer(messages_reply) as server:
        result = run_cli("eval", "quiz.py", "--model", "anthropic/claude-haiku-4-5", "--max-tokens", "64",
                         "--log-dir", "logs", "--display", "none", cwd=tmp_path,
                         env={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.url}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 5
    assert server.requests[0].json()["system"] == "Answer briefly."
    [log_file] = (tmp_path / "logs").glob("*.jsonl")
    log = evalkit.read_eval_log(log_file)
    assert sorted(s.output["completion"] for s in log.samples) == sorted(str(i * 3) for i in range(5))
    assert log.status == "success" and log.footer["results"]["match"]["accuracy"] == 1.0
    assert log.footer["usage"]["anthropic/claude-haiku-4-5"]["input_tokens"] == 5 * (4 + 5)
    assert KEY not in log_file.read_text()
