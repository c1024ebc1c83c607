"""bedrock: the real aioboto3 client talking Converse to a local server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from evalkit import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig, ModelOutput, get_model, read_eval_log
from evalkit.errors import EvalkitError, ModelArgsError
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, RETRY_AFTER, generate_and_close, generate_once, set_fake_aws_env, waited_for_hint
from tests.servers.converse_server import aws_error, converse_reply
from tests.servers.http import RecordingServer, Reply

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    set_fake_aws_env(monkeypatch, "us-east-1", unset=("BEDROCK_BASE_URL",))


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, **model_args: Any) -> ModelOutput:
    return generate_once(f"bedrock/{MODEL_ID}", input, gen, base_url=server.url, **model_args)


def test_converse_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(lambda r: converse_reply("Tokyo.", usage=(21, 2, 23))) as server:
        monkeypatch.setenv("BEDROCK_BASE_URL", server.url)
        model = get_model(f"bedrock/{MODEL_ID}")
        messages = [
            ChatMessageSystem("Answer briefly."), ChatMessageUser("Hi"), ChatMessageAssistant("Hello!"),
            ChatMessageUser("Capital of Japan?"), ChatMessageUser("One word."),
        ]
        config = GenerateConfig(max_tokens=50, temperature=0.2, top_p=0.9, top_k=40, stop_seqs=("\n\n", "END"))
        output = generate_and_close(model, messages, config)
    [request] = server.requests
    assert request.method == "POST" and request.path == f"/model/{MODEL_ID.replace(':', '%3A')}/converse"
    assert "Credential=AKIDEVALKITTEST/" in request.headers["authorization"] and "/us-east-1/bedrock/" in request.headers["authorization"]
    assert request.json() == {
        "system": [{"text": "Answer briefly."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello!"}]},
            {"role": "user", "content": [{"text": "Capital of Japan?"}, {"text": "One word."}]},
        ],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\n", "END"]},
        "additionalModelRequestFields": {"top_k": 40},
    }
    assert output.completion == "Tokyo." and output.stop_reason == "stop"
    assert output.model == f"bedrock/{MODEL_ID}"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 21, "output_tokens": 2, "total_tokens": 23}
    assert model.usage.total_tokens == 23


@pytest.mark.parametrize(("wire", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "max_tokens"),
    ("content_filtered", "content_filter"), ("guardrail_intervened", "content_filter"), ("tool_use", "tool_calls"),
    ("model_context_window_exceeded", "model_length"), ("something_new", "unknown"),
])
def test_stop_reasons(wire: str, expected: str) -> None:
    with RecordingServer(lambda r: converse_reply("x", stop_reason=wire)) as server:
        assert generate(server, "hi").stop_reason == expected


def test_unsupported_fields_warn_and_are_not_sent() -> None:
    with RecordingServer(lambda r: converse_reply("ok")) as server:
        with pytest.warns(UserWarning, match="'bedrock' does not support presence_penalty"):
            generate(server, "hi", GenerateConfig(max_retries=0, presence_penalty=0.5, max_tokens=5))
    body = server.requests[0].json()
    assert body["inferenceConfig"] == {"maxTokens": 5} and "presence_penalty" not in json.dumps(body)


def test_model_args_go_to_the_client() -> None:
    with RecordingServer(lambda r: converse_reply("ok")) as server:
        generate(server, "hi", region_name="eu-west-1", client_config={"user_agent_extra": "evalkit-test"})
    headers = server.requests[0].headers
    assert "/eu-west-1/bedrock/" in headers["authorization"] and "evalkit-test" in headers["user-agent"]


def test_unknown_model_arg_is_rejected_before_any_request() -> None:
    with pytest.raises(ModelArgsError, match="unexpected keyword argument 'regoin_name'"):
        get_model(f"bedrock/{MODEL_ID}", regoin_name="eu-west-1")


@pytest.mark.parametrize(("reply", "error"), [
    (aws_error(400, "ValidationException", "messages: must alternate"), "ValidationException"),
    (aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."), "UnrecognizedClientException"),
    (aws_error(403, "AccessDeniedException", "no access to this model"), "AccessDeniedException"),
    (aws_error(404, "ResourceNotFoundException", "model not found"), "ResourceNotFoundException"),
])
def test_client_errors_are_not_retried(reply: Reply, error: str) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(ClientError, match=error):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_throttling_is_retried_after_retry_after() -> None:
    replies = iter([aws_error(429, "ThrottlingException", "Too many requests", {"Retry-After": str(RETRY_AFTER)}), converse_reply("after wait")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(server, "hi", GenerateConfig(max_retries=2))
    first, second = server.requests
    assert output.completion == "after wait"
    assert waited_for_hint(first, second)
    assert second.headers["amz-sdk-request"].startswith("attempt=1")  # botocore did not retry by itself


@pytest.mark.parametrize("reply", [
    aws_error(500, "InternalServerException", "boom"),
    aws_error(503, "ServiceUnavailableException", "busy"),
    Reply(drop=True),
])
def test_server_errors_and_dropped_connections_are_retried(reply: Reply) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises((ClientError, ConnectionClosedError)):
            generate(server, "hi", GenerateConfig(max_retries=1, timeout=10))
    assert len(server.requests) == 2


def test_dropped_connection_then_success() -> None:
    replies = iter([Reply(drop=True), converse_reply("second try")])
    with RecordingServer(lambda r: next(replies)) as server:
        model = get_model(f"bedrock/{MODEL_ID}", base_url=server.url)
        output = generate_and_close(model, "hi", GenerateConfig(max_retries=1))
    assert output.completion == "second try" and model.retries == 1


def test_malformed_json_is_an_error() -> None:
    with RecordingServer(lambda r: Reply(200, "{not json")) as server:
        with pytest.raises(RuntimeError, match="without output"):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with RecordingServer(lambda r: converse_reply("never")) as server:
        with pytest.raises(EvalkitError, match="provider 'bedrock' needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
            generate(server, "hi")
    assert server.requests == []


def test_cli_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with RecordingServer(lambda r: converse_reply("Tokyo")) as server:
        result = run_cli(
            "eval", str(REPO / "tasks" / "factual_qa.py"), "--model", f"bedrock/{MODEL_ID}", "--limit", "2",
            "-M", "region_name=us-west-2", "--log-dir", str(tmp_path / "logs"), env={"BEDROCK_BASE_URL": server.url},
        )
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 2
    body = server.requests[0].json()
    assert body["system"] == [{"text": "Answer in a few words."}]
    assert body["inferenceConfig"] == {"maxTokens": 32, "temperature": 0.0}
    assert "/us-west-2/bedrock/" in server.requests[0].headers["authorization"]
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success" and log.footer["usage"][f"bedrock/{MODEL_ID}"]["total_tokens"] == 28
