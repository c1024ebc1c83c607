"""google and vertex: the real google-genai client talking generateContent to a local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.genai import errors

from evalkit import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig, ModelOutput, get_model, read_eval_log
from evalkit.errors import EvalkitError, ModelArgsError
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, RETRY_AFTER, generate_and_close, generate_once, waited_for_hint
from tests.servers.gemini_server import gemini_reply, google_error
from tests.servers.http import RecordingServer, Reply

MODEL = "gemini-2.0-flash"


@pytest.fixture(autouse=True)
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-evalkit-test")
    for name in ("GEMINI_API_KEY", "GOOGLE_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


def generate(model_name: str, server: RecordingServer, input: Any, gen: GenerateConfig = NO_RETRIES, **model_args: Any) -> ModelOutput:
    return generate_once(model_name, input, gen, base_url=server.url, **model_args)


def test_generate_content_request_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(lambda r: gemini_reply("Tokyo", usage=(30, 2, 32))) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        model = get_model(f"google/{MODEL}", safety_settings={"harassment": "block_none", "HARM_CATEGORY_DANGEROUS_CONTENT": "BLOCK_ONLY_HIGH"})
        messages = [ChatMessageSystem("Answer briefly."), ChatMessageUser("Hi"), ChatMessageAssistant("Hello!"), ChatMessageUser("Capital of Japan?")]
        config = GenerateConfig(max_tokens=64, temperature=0.3, top_p=0.8, top_k=20, stop_seqs=("END",), seed=7,
                                presence_penalty=0.1, frequency_penalty=0.2)
        output = generate_and_close(model, messages, config)
    [request] = server.requests
    assert request.method == "POST" and request.path.endswith(f"/models/{MODEL}:generateContent")
    assert request.headers["x-goog-api-key"] == "gkey-evalkit-test"
    assert request.json() == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Capital of Japan?"}]},
        ],
        "systemInstruction": {"role": "user", "parts": [{"text": "Answer briefly."}]},
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"},
            {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_NONE"},
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"},
        ],
        "generationConfig": {
            "maxOutputTokens": 64, "temperature": 0.3, "topP": 0.8, "topK": 20, "stopSequences": ["END"], "seed": 7,
            "presencePenalty": 0.1, "frequencyPenalty": 0.2,
        },
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == f"google/{MODEL}"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 30, "output_tokens": 2, "total_tokens": 32}


@pytest.mark.parametrize(("wire", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("OTHER", "unknown"),
])
def test_finish_reasons(wire: str, expected: str) -> None:
    with RecordingServer(lambda r: gemini_reply("x", finish_reason=wire)) as server:
        assert generate(f"google/{MODEL}", server, "hi").stop_reason == expected


def test_candidates_and_logprobs() -> None:
    logprobs = {"chosenCandidates": [{"token": "4", "logProbability": -0.01}],
                "topCandidates": [{"candidates": [{"token": "4", "logProbability": -0.01}, {"token": "four", "logProbability": -4.6}]}]}
    reply = gemini_reply("4", "four")
    reply.body["candidates"][0]["logprobsResult"] = logprobs
    with RecordingServer(lambda r: reply) as server:
        output = generate(f"google/{MODEL}", server, "2+2?", GenerateConfig(max_retries=0, num_choices=2, logprobs=True, top_logprobs=2))
    assert server.requests[0].json()["generationConfig"] == {"candidateCount": 2, "responseLogprobs": True, "logprobs": 2}
    assert [c.message.content for c in output.choices] == ["4", "four"]
    [token] = output.choices[0].logprobs or ()
    assert token.token == "4" and token.logprob == -0.01 and [t.token for t in token.top_logprobs] == ["4", "four"]


def test_blocked_prompt_is_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}
    with RecordingServer(lambda r: Reply(body=body)) as server:
        output = generate(f"google/{MODEL}", server, "something bad")
    assert output.completion == "" and output.stop_reason == "content_filter"
    assert output.usage is not None and output.usage.input_tokens == 5


@pytest.mark.parametrize(("reply", "code"), [
    (google_error(400, "INVALID_ARGUMENT", "bad request"), 400),
    (google_error(401, "UNAUTHENTICATED", "API key not valid"), 401),
    (google_error(403, "PERMISSION_DENIED", "denied"), 403),
    (google_error(404, "NOT_FOUND", "models/nope is not found"), 404),
])
def test_client_errors_are_not_retried(reply: Reply, code: int) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(errors.ClientError) as caught:
            generate(f"google/{MODEL}", server, "hi", GenerateConfig(max_retries=3))
    assert caught.value.code == code and len(server.requests) == 1


def test_rate_limit_is_retried_after_retry_after() -> None:
    replies = iter([google_error(429, "RESOURCE_EXHAUSTED", "quota", {"Retry-After": str(RETRY_AFTER)}), gemini_reply("after wait")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(f"google/{MODEL}", server, "hi", GenerateConfig(max_retries=2))
    first, second = server.requests
    assert output.completion == "after wait" and waited_for_hint(first, second)


@pytest.mark.parametrize("reply", [google_error(500, "INTERNAL", "boom"), google_error(503, "UNAVAILABLE", "busy"), Reply(drop=True)])
def test_server_errors_and_dropped_connections_are_retried(reply: Reply) -> None:
    replies = iter([reply, gemini_reply("recovered")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(f"google/{MODEL}", server, "hi", GenerateConfig(max_retries=1))
    assert output.completion == "recovered" and len(server.requests) == 2


def test_server_errors_are_raised_when_retries_run_out() -> None:
    with RecordingServer(lambda r: google_error(500, "INTERNAL", "boom")) as server:
        with pytest.raises(errors.ServerError):
            generate(f"google/{MODEL}", server, "hi", GenerateConfig(max_retries=1))
    assert len(server.requests) == 2  # the SDK's own retries are off


def test_malformed_json_is_an_error() -> None:
    with RecordingServer(lambda r: Reply(200, "{not json")) as server:
        with pytest.raises(ValueError):
            generate(f"google/{MODEL}", server, "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


@pytest.mark.parametrize(("args", "message"), [
    ({"safety_settings": {"harassment": "block_sometimes"}}, "-M safety_settings: harassment: block_sometimes"),
    ({"safety_settings": {"violence": "block_none"}}, "-M safety_settings: violence"),
    ({"projct": "p"}, "unexpected keyword argument 'projct'"),
    ({"project": "p"}, "Gemini API does not support project/location"),
])
def test_bad_model_args(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelArgsError, match=message):
        get_model(f"google/{MODEL}", **args)


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'google' needs GOOGLE_API_KEY or GEMINI_API_KEY"):
        get_model(f"google/{MODEL}")


def test_vertex_express_mode_with_api_key() -> None:
    with RecordingServer(lambda r: gemini_reply("vertex says hi")) as server:
        output = generate(f"vertex/{MODEL}", server, "hi")
    [request] = server.requests
    assert request.path == f"/v1beta1/publishers/google/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == "gkey-evalkit-test"
    assert output.completion == "vertex says hi" and output.model == f"vertex/{MODEL}"


def test_vertex_project_and_location_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.oauth2.credentials import Credentials

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    with RecordingServer(lambda r: gemini_reply("from vertex")) as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        model = get_model(f"vertex/{MODEL}", credentials=Credentials(token="ya29.fake-token"))
        output = generate_and_close(model, [ChatMessageSystem("Be brief."), ChatMessageUser("hi")], GenerateConfig(max_tokens=8))
    [request] = server.requests
    assert request.path == f"/v1beta1/projects/my-project/locations/europe-west4/publishers/google/models/{MODEL}:generateContent"
    assert request.headers["authorization"] == "Bearer ya29.fake-token" and "x-goog-api-key" not in request.headers
    assert request.json()["generationConfig"] == {"maxOutputTokens": 8}
    assert output.completion == "from vertex"


def test_cli_eval_with_safety_settings(tmp_path: Path) -> None:
    with RecordingServer(lambda r: gemini_reply("Tokyo")) as server:
        result = run_cli(
            "eval", str(REPO / "tasks" / "factual_qa.py"), "--model", f"google/{MODEL}", "--limit", "1",
            "-M", "safety_settings={hate_speech: block_low_and_above}", "--log-dir", str(tmp_path / "logs"),
            env={"GOOGLE_BASE_URL": server.url},
        )
    assert result.returncode == 0, result.stderr
    body = server.requests[0].json()
    assert {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"} in body["safetySettings"]
    assert body["generationConfig"] == {"maxOutputTokens": 32, "temperature": 0.0}
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success" and log.samples[0].output["completion"] == "Tokyo"


def test_vertex_without_any_credentials_names_the_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(EvalkitError, match="provider 'vertex' needs GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION.* or GOOGLE_API_KEY"):
        get_model(f"vertex/{MODEL}")
