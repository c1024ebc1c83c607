"""sagemaker: the real aioboto3 sagemaker-runtime client calling InvokeEndpoint on a local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from evalkit import (
    ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig, ModelOutput, Sample, Task, eval, get_model, read_eval_log,
)
from evalkit.errors import ModelArgsError
from evalkit.model.content import ContentImage, ContentReasoning, ContentText
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, RETRY_AFTER, generate_once, set_fake_aws_env, waited_for_hint
from tests.servers.converse_server import aws_error
from tests.servers.http import RecordingServer, Reply

ENDPOINT = "llama-tgi-endpoint"


def tgi_reply(text: str, finish_reason: str = "eos_token", tokens: int = 3) -> Reply:
    return Reply(body=[{"generated_text": text, "details": {"finish_reason": finish_reason, "generated_tokens": tokens}}])


def chat_reply(text: str, finish_reason: str = "stop") -> Reply:
    return Reply(body={"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    set_fake_aws_env(monkeypatch, "eu-central-1", unset=("SAGEMAKER_BASE_URL",))


def generate(server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, **model_args: Any) -> ModelOutput:
    return generate_once(f"sagemaker/{ENDPOINT}", input, gen, base_url=server.url, **model_args)


def test_tgi_request_and_output() -> None:
    with RecordingServer(lambda r: tgi_reply("Tokyo", "stop_sequence", tokens=2)) as server:
        config = GenerateConfig(max_retries=0, max_tokens=20, temperature=0.0, top_p=0.9, top_k=10, stop_seqs=("\n",), seed=4, frequency_penalty=0.5)
        output = generate(server, "Capital of Japan?", config)
    [request] = server.requests
    assert request.method == "POST" and request.path == f"/endpoints/{ENDPOINT}/invocations"
    assert request.headers["content-type"] == "application/json" and request.headers["accept"] == "application/json"
    assert "/eu-central-1/sagemaker/aws4_request" in request.headers["authorization"]
    assert request.json() == {"inputs": "Capital of Japan?", "parameters": {
        "details": True, "return_full_text": False, "do_sample": False, "max_new_tokens": 20, "top_p": 0.9, "top_k": 10,
        "stop": ["\n"], "seed": 4, "frequency_penalty": 0.5}}
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == f"sagemaker/{ENDPOINT}"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 0, "output_tokens": 2, "total_tokens": 2}


def test_tgi_conversation_prompt_sampling_and_warnings() -> None:
    with RecordingServer(lambda r: Reply(body={"generated_text": "fine", "details": {"finish_reason": "length", "generated_tokens": 8}})) as server:
        messages = [ChatMessageSystem("Be kind."), ChatMessageUser("Hi"), ChatMessageAssistant("Hello"), ChatMessageUser("How are you?")]
        with pytest.warns(UserWarning, match="'sagemaker' does not support presence_penalty"):
            output = generate(server, messages, GenerateConfig(max_retries=0, temperature=0.7, presence_penalty=0.3))
    body = server.requests[0].json()
    assert body["inputs"] == "System: Be kind.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: How are you?\n\nAssistant:"
    assert body["parameters"] == {"details": True, "return_full_text": False, "temperature": 0.7, "do_sample": True}
    assert output.completion == "fine" and output.stop_reason == "max_tokens"


def test_messages_api() -> None:
    with RecordingServer(lambda r: chat_reply("Tokyo", "length")) as server:
        output = generate(server, [ChatMessageSystem("Brief."), ChatMessageUser("Capital of Japan?")],
                          GenerateConfig(max_retries=0, max_tokens=5, logprobs=True), api="messages")
    assert server.requests[0].json() == {"model": ENDPOINT, "messages": [{"role": "system", "content": "Brief."},
                                         {"role": "user", "content": "Capital of Japan?"}], "max_tokens": 5, "logprobs": True}
    assert output.completion == "Tokyo" and output.stop_reason == "max_tokens" and output.usage is not None and output.usage.total_tokens == 12


def test_bad_model_args() -> None:
    with pytest.raises(ModelArgsError, match="-M api must be tgi or messages"):
        get_model(f"sagemaker/{ENDPOINT}", api="openai")
    with pytest.raises(ModelArgsError, match="unexpected keyword argument 'endpoint'"):
        get_model(f"sagemaker/{ENDPOINT}", endpoint="x")


@pytest.mark.parametrize(("reply", "code"), [
    (aws_error(400, "ValidationError", f"Endpoint {ENDPOINT} of account 123 not found."), "ValidationError"),
    (aws_error(403, "AccessDeniedException", "denied"), "AccessDeniedException"),
    (aws_error(424, "ModelError", "Received client error (400) from primary", OriginalStatusCode=400, OriginalMessage="bad input"), "ModelError"),
])
def test_client_errors_are_not_retried(reply: Reply, code: str) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(ClientError, match=code):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_throttling_is_retried_after_retry_after() -> None:
    replies = iter([aws_error(429, "ThrottlingException", "slow", {"Retry-After": str(RETRY_AFTER)}), tgi_reply("after wait")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(server, "hi", GenerateConfig(max_retries=2))
    first, second = server.requests
    assert output.completion == "after wait" and waited_for_hint(first, second)


@pytest.mark.parametrize("reply", [
    aws_error(500, "InternalFailure", "boom"),
    aws_error(424, "ModelError", "Received server error (503) from primary", OriginalStatusCode=503, OriginalMessage="loading"),
    Reply(drop=True),
])
def test_server_errors_and_dropped_connections_are_retried(reply: Reply) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises((ClientError, ConnectionClosedError)):
            generate(server, "hi", GenerateConfig(max_retries=1))
    assert len(server.requests) == 2


@pytest.mark.parametrize(("reply", "message"), [(Reply(200, "<html>"), "response is not JSON"), (Reply(body=[{"text": "x"}]), "no generated_text")])
def test_malformed_responses_are_errors(reply: Reply, message: str) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(RuntimeError, match=message):
            generate(server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_cli_eval_messages_api(tmp_path: Path) -> None:
    with RecordingServer(lambda r: chat_reply("4")) as server:
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", f"sagemaker/{ENDPOINT}", "--limit", "3-3",
                         "-M", "api=messages", "--log-dir", str(tmp_path / "logs"), env={"SAGEMAKER_BASE_URL": server.url})
    assert result.returncode == 0, result.stderr
    [request] = server.requests
    assert request.json()["messages"][0] == {"role": "system", "content": "Answer in a few words."}
    [path] = (tmp_path / "logs").glob("*.jsonl")
    assert read_eval_log(path).footer["results"]["includes"]["accuracy"] == 1.0


def test_a_tool_using_task_stops_with_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda r: tgi_reply("never")) as server:
        result = run_cli("eval", str(REPO / "tasks" / "tool_use.py"), "--model", f"sagemaker/{ENDPOINT}", "-T", "n=2",
                         "--log-dir", str(tmp_path / "logs"), "--display", "plain", env={"SAGEMAKER_BASE_URL": server.url})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "cannot call tools" in line]
    assert f"provider 'sagemaker' cannot call tools (sagemaker/{ENDPOINT})" in line
    assert server.requests == []
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.status == "error" and "cannot call tools" in log.error and "\n" not in log.error


def test_messages_are_sent_as_text_and_an_image_fails_the_sample_in_one_line(tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    with RecordingServer(lambda r: tgi_reply("Tokyo")) as server:
        output = generate(server, [ChatMessageUser([ContentText("Capital of Japan?"), ContentText("One word.")]),
                                   ChatMessageAssistant([ContentReasoning("easy"), ContentText("Tokyo")]),
                                   ChatMessageUser("Again?")])
        [log] = eval(Task(dataset=[Sample(input=[ChatMessageUser([ContentText("What is it?"), ContentImage(str(image))])], target="dot")]),
                     model=f"sagemaker/{ENDPOINT}", model_args={"base_url": server.url}, log_dir=tmp_path / "logs", display="none")
    assert server.requests[0].json()["inputs"] == "User: Capital of Japan?\nOne word.\n\nAssistant: Tokyo\n\nUser: Again?\n\nAssistant:"
    assert output.completion == "Tokyo" and len(server.requests) == 1
    first_line = read_eval_log(log.location).samples[0].error.splitlines()[0]
    assert first_line == (f"ImagesUnsupportedError: sagemaker/{ENDPOINT} takes text only, but a user message holds an image; "
                          "use a model and API that accept images")
    assert log.status == "error" and log.error == f"sample 1 (epoch 1) failed: {first_line}"
