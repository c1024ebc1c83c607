"""transform: a JMESPath-mapped custom HTTP API, served locally, through httpx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import (
    ChatMessageSystem,
    ChatMessageUser,
    ContentImage,
    ContentText,
    GenerateConfig,
    ModelOutput,
    ResponseSchema,
    get_model,
    read_eval_log,
)
from evalkit.errors import EvalkitError, ImagesUnsupportedError, ModelArgsError, ToolsUnsupportedError
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, RETRY_AFTER, generate_once, waited_for_hint
from tests.servers.http import RecordingServer, Reply

SPEC = """
base_url: {url}
custom_path: /api/v2/generate
headers: {{X-Client: evalkit-tests}}
openai_to_custom_request:
  engine: model
  prompt: "messages[?role=='user'] | [-1].content"
  system: "messages[?role=='system'] | [0].content"
  params:
    temp: temperature
    max_new: max_tokens
    stop_words: stop
  stream: false
custom_to_openai_response:
  choices: "[{{message: {{role: 'assistant', content: result.text}}, finish_reason: result.why}}]"
  usage: {{prompt_tokens: meta.tokens_in, completion_tokens: meta.tokens_out}}
"""


def custom_reply(text: str, why: str = "stop", tokens: tuple[int, int] = (7, 2)) -> Reply:
    return Reply(body={"result": {"text": text, "why": why}, "meta": {"tokens_in": tokens[0], "tokens_out": tokens[1]}})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("EVALKIT_TRANSFORM_SPEC", "TRANSFORM_API_KEY", "CUSTOM_KEY"):
        monkeypatch.delenv(name, raising=False)


def write_spec(tmp_path: Path, url: str, text: str = SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text.format(url=url))
    return path


def generate(server: RecordingServer, spec: Any, input: Any, gen: GenerateConfig = NO_RETRIES, **model_args: Any) -> ModelOutput:
    return generate_once("transform/acme-7b", input, gen, spec=str(spec) if isinstance(spec, Path) else spec, **model_args)


def test_request_and_response_are_mapped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSFORM_API_KEY", "tk-secret-123")
    with RecordingServer(lambda r: custom_reply("Tokyo", tokens=(12, 1))) as server:
        spec = write_spec(tmp_path, server.url)
        messages = [ChatMessageSystem("Be brief."), ChatMessageUser("Capital of Japan?")]
        output = generate(server, spec, messages, GenerateConfig(max_retries=0, temperature=0.0, max_tokens=16, stop_seqs=("\n",)))
    [request] = server.requests
    assert request.method == "POST" and request.path == "/api/v2/generate"
    assert request.headers["authorization"] == "Bearer tk-secret-123" and request.headers["x-client"] == "evalkit-tests"
    assert request.json() == {
        "engine": "acme-7b", "prompt": "Capital of Japan?", "system": "Be brief.",
        "params": {"temp": 0.0, "max_new": 16, "stop_words": ["\n"]}, "stream": False,
    }
    assert output.completion == "Tokyo" and output.stop_reason == "stop" and output.model == "transform/acme-7b"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 12, "output_tokens": 1, "total_tokens": 13}


@pytest.mark.parametrize(("why", "expected"), [("stop", "stop"), ("length", "max_tokens"), ("content_filter", "content_filter"), ("odd", "unknown")])
def test_finish_reasons(tmp_path: Path, why: str, expected: str) -> None:
    with RecordingServer(lambda r: custom_reply("x", why)) as server:
        assert generate(server, write_spec(tmp_path, server.url), "hi").stop_reason == expected


def test_unset_settings_are_left_out_and_unread_ones_warn(tmp_path: Path) -> None:
    with RecordingServer(lambda r: custom_reply("ok")) as server:
        with pytest.warns(UserWarning, match="'transform' does not support seed"):
            generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=0, seed=3))
    assert server.requests[0].json() == {"engine": "acme-7b", "prompt": "hi", "params": {}, "stream": False}


def test_json_spec_from_environment_with_custom_key_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with RecordingServer(lambda r: Reply(body={"out": "pong", "n_in": 3, "n_out": 1})) as server:
        spec = {
            "base_url": server.url, "api_key_env": "CUSTOM_KEY", "api_key_header": "X-API-Key", "api_key_scheme": "",
            "openai_to_custom_request": {"input": "@"},
            "custom_to_openai_response": {
                "choices": "[{message: {content: out}, finish_reason: 'stop'}]",
                "usage": {"prompt_tokens": "n_in", "completion_tokens": "n_out", "total_tokens": "`4`"},
            },
        }
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        monkeypatch.setenv("EVALKIT_TRANSFORM_SPEC", str(tmp_path / "spec.json"))
        monkeypatch.setenv("CUSTOM_KEY", "raw-key-456")
        output = generate(server, None, "ping", GenerateConfig(max_retries=0, top_k=5, num_choices=1), params={"api-version": "2024-01"})
    [request] = server.requests
    assert request.path == "/?api-version=2024-01"  # -M params went to httpx.AsyncClient
    assert request.headers["x-api-key"] == "raw-key-456" and "authorization" not in request.headers
    assert request.json() == {"input": {"model": "acme-7b", "messages": [{"role": "user", "content": "ping"}], "top_k": 5, "n": 1}}
    assert output.completion == "pong" and output.usage is not None and output.usage.total_tokens == 4


@pytest.mark.parametrize(("text", "message"), [
    ("base_url: [unclosed", "transform spec {path}: not valid YAML or JSON"),
    ("- a\n- b\n", "transform spec {path}: (top level): must be a mapping"),
    ("base_url: http://x\nopenai_to_custom_request: {{a: model}}\ncustom_to_openai_response: {{choices: x}}\nbase_ulr: y\n",
     "transform spec {path}: base_ulr: unknown key"),
    ("openai_to_custom_request: {{a: model}}\ncustom_to_openai_response: {{choices: x}}\n", "transform spec {path}: base_url: missing"),
    ("base_url: http://x\nopenai_to_custom_request:\n  params:\n    temp: 'temperature +'\ncustom_to_openai_response: {{choices: x}}\n",
     "transform spec {path}: openai_to_custom_request.params.temp: invalid JMESPath 'temperature +'"),
    ("base_url: http://x\nopenai_to_custom_request: {{a: [model]}}\ncustom_to_openai_response: {{choices: x}}\n",
     "transform spec {path}: openai_to_custom_request.a: must be a JMESPath string"),
    ("base_url: http://x\nopenai_to_custom_request: {{a: model}}\ncustom_to_openai_response: {{text: x}}\n",
     "transform spec {path}: custom_to_openai_response.choices: missing"),
    ("base_url: http://x\nheaders: [a]\nopenai_to_custom_request: {{a: model}}\ncustom_to_openai_response: {{choices: x}}\n",
     "transform spec {path}: headers: must be a mapping"),
])
def test_bad_specs_are_rejected_before_any_request(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text.format())
    with pytest.raises(EvalkitError) as caught:
        get_model("transform/m", spec=str(path))
    assert str(caught.value).startswith(message.format(path=path)) and "\n" not in str(caught.value)


def test_missing_spec_and_missing_named_key(tmp_path: Path) -> None:
    with pytest.raises(EvalkitError, match="-M spec=PATH or set EVALKIT_TRANSFORM_SPEC"):
        get_model("transform/m")
    with pytest.raises(EvalkitError, match="file not found"):
        get_model("transform/m", spec=str(tmp_path / "nope.yaml"))
    spec = {"base_url": "http://127.0.0.1:9", "api_key_env": "CUSTOM_KEY", "openai_to_custom_request": {"p": "model"},
            "custom_to_openai_response": {"choices": "c"}}
    with pytest.raises(EvalkitError, match="provider 'transform' needs CUSTOM_KEY"):
        get_model("transform/m", spec=spec)


def test_unknown_model_arg(tmp_path: Path) -> None:
    with pytest.raises(ModelArgsError, match="unexpected keyword argument 'timout'"):
        get_model("transform/m", spec=str(write_spec(tmp_path, "http://127.0.0.1:9")), timout=3)


@pytest.mark.parametrize(("status", "message"), [
    (400, "transform: request rejected \\(HTTP 400\\): nope"),
    (401, "transform: authentication failed \\(HTTP 401\\); check TRANSFORM_API_KEY: nope"),
    (403, "transform: permission denied for model 'acme-7b' \\(HTTP 403\\): nope"),
    (404, "transform: model 'acme-7b' or its endpoint was not found \\(HTTP 404\\): nope"),
])
def test_client_errors_are_clear_and_not_retried(tmp_path: Path, status: int, message: str) -> None:
    with RecordingServer(lambda r: Reply(status, {"error": "nope"})) as server:
        with pytest.raises(EvalkitError, match=message):
            generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_client_error_without_json_keeps_the_body(tmp_path: Path) -> None:
    with RecordingServer(lambda r: Reply(422, "bad prompt field")) as server:
        with pytest.raises(EvalkitError, match="transform: request rejected \\(HTTP 422\\): bad prompt field"):
            generate(server, write_spec(tmp_path, server.url), "hi")


def test_rate_limit_is_retried_after_retry_after(tmp_path: Path) -> None:
    replies = iter([Reply(429, {"error": "slow down"}, headers={"Retry-After": str(RETRY_AFTER)}), custom_reply("after wait")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=2))
    first, second = server.requests
    assert output.completion == "after wait" and waited_for_hint(first, second)


@pytest.mark.parametrize("reply", [Reply(500, {"error": "boom"}), Reply(503, "busy"), Reply(drop=True)])
def test_server_errors_and_dropped_connections_are_retried(tmp_path: Path, reply: Reply) -> None:
    replies = iter([reply, reply, custom_reply("third time")])
    with RecordingServer(lambda r: next(replies)) as server:
        output = generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=2))
    assert output.completion == "third time" and len(server.requests) == 3


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(200, "{not json"), "response is not JSON"),
    (Reply(body={"unexpected": True}), "choice has no message.content text"),
])
def test_malformed_responses_are_errors(tmp_path: Path, reply: Reply, message: str) -> None:
    with RecordingServer(lambda r: reply) as server:
        with pytest.raises(RuntimeError, match=message):
            generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


def test_cli_eval_and_cli_spec_error(tmp_path: Path) -> None:
    with RecordingServer(lambda r: custom_reply("7")) as server:
        spec = write_spec(tmp_path, server.url)
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "transform/acme-7b", "--limit", "2-2",
                         "-M", f"spec={spec}", "--log-dir", str(tmp_path / "logs"), env={"TRANSFORM_API_KEY": "cli-key"})
    assert result.returncode == 0, result.stderr
    [request] = server.requests
    assert request.json()["params"] == {"temp": 0.0, "max_new": 32} and request.headers["authorization"] == "Bearer cli-key"
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success" and log.footer["results"]["includes"]["accuracy"] == 1.0

    spec.write_text(SPEC.format(url="http://x").replace("temperature", "temperature +"))
    bad = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "transform/acme-7b", "-M", f"spec={spec}")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "openai_to_custom_request.params.temp: invalid JMESPath" in bad.stderr


def test_reasoning_effort_and_response_format_reach_a_spec_that_reads_them(tmp_path: Path) -> None:
    text = SPEC.replace("    stop_words: stop\n", "    stop_words: stop\n    effort: reasoning_effort\n    schema: response_format.json_schema.schema\n")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    config = GenerateConfig(max_retries=0, reasoning_effort="low", response_schema=ResponseSchema("city", schema))
    with RecordingServer(lambda r: custom_reply('{"city": "Tokyo"}')) as server:
        output = generate(server, write_spec(tmp_path, server.url, text), "Capital of Japan?", config)
    assert server.requests[0].json()["params"] == {"effort": "low", "schema": schema}
    assert output.completion == '{"city": "Tokyo"}'


def test_a_spec_that_does_not_read_reasoning_effort_warns(tmp_path: Path) -> None:
    with RecordingServer(lambda r: custom_reply("ok")) as server:
        with pytest.warns(UserWarning, match="'transform' does not support reasoning_effort"):
            generate(server, write_spec(tmp_path, server.url), "hi", GenerateConfig(max_retries=0, reasoning_effort="high"))
    assert "high" not in server.requests[0].body.decode()


def test_tools_and_images_are_refused_with_one_line(tmp_path: Path) -> None:
    from evalkit.tool import ToolInfo

    model = get_model("transform/acme-7b", spec=str(write_spec(tmp_path, "http://127.0.0.1:9")))
    image = ChatMessageUser([ContentText("What is this?"), ContentImage("https://example.com/cat.png")])

    async def ask(**options: Any) -> Any:
        return await model.generate([image], **options)

    with pytest.raises(ToolsUnsupportedError, match="^provider 'transform' cannot call tools") as tools_refused:
        anyio.run(lambda: ask(tools=[ToolInfo("add", "Add.")]))
    with pytest.raises(ImagesUnsupportedError, match="^transform/acme-7b takes text only, but a user message holds an image") as image_refused:
        anyio.run(lambda: ask(config=NO_RETRIES))
    assert "\n" not in str(tools_refused.value) + str(image_refused.value)
