"""The hf-inference provider: huggingface_hub's real AsyncInferenceClient talking HTTP to a
local server that answers as TGI (chat completions) and TEI (embeddings) do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ResponseSchema,
    Sample,
    Task,
    eval,
    read_eval_log,
)
from evalkit.errors import EvalkitError
from evalkit.model import api
from evalkit.providers import hf_inference
from evalkit.scorer import includes
from evalkit.solver import generate, use_tools
from evalkit.tool import ToolCall, ToolFunction
from tests.providers.helpers import (
    RETRY_AFTER, check_model_embed, check_not_retried, check_retried, cli_eval, cli_log, embed_and_close,
    generate_and_close, isolate_env, numbered_texts,
)
from tests.servers.cohere_server import embedding
from tests.servers.http import RecordingServer, Reply
from tests.servers.tgi_server import scripted_turns, tgi_error, tgi_handler, tgi_reply, tgi_tool_call
from tests.tools import ADD_PARAMETERS, add

TOKEN = "hf_test0123456789"
ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_INFERENCE_BASE_URL")
HUB_ID = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token from the machine (variables, .env or a saved login); a test token; warnings shown
    again; huggingface_hub out of the offline mode the test session sets (it blocks every request)."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, HF_TOKEN=TOKEN)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(api, "_warned", set())


def endpoint(url: str) -> evalkit.Model:
    """The model of a dedicated endpoint (or TGI server) at `url`."""
    return evalkit.get_model(f"hf-inference/{url}")


def test_chat_request_to_a_dedicated_endpoint() -> None:
    messages = [ChatMessageSystem("Be brief."), ChatMessageUser("First."), ChatMessageAssistant("Noted."),
                ChatMessageUser("Now answer. ANSWER: forty two")]
    config = GenerateConfig(max_tokens=10, temperature=0.2, top_p=0.8, seed=7, stop_seqs=("STOP",), frequency_penalty=0.1,
                            presence_penalty=0.3, logprobs=True, top_logprobs=1)
    with RecordingServer(tgi_reply) as server:
        output = generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), messages, config)
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body == {
        "model": body["model"], "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "First."},
                     {"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Now answer. ANSWER: forty two"}],
        "max_tokens": 10, "temperature": 0.2, "top_p": 0.8, "seed": 7, "stop": ["STOP"], "frequency_penalty": 0.1,
        "presence_penalty": 0.3, "logprobs": True, "top_logprobs": 1,
    }
    assert (output.completion, output.stop_reason) == ("forty two", "stop")  # TGI's eos_token
    assert output.usage == evalkit.ModelUsage(5, 2, 7)
    assert [(lp.token, lp.logprob, [t.token for t in lp.top_logprobs]) for lp in output.choices[0].logprobs] == [
        ("forty", -0.5, ["forty0"]), ("two", -0.5, ["two0"])]


def test_base_url_from_the_environment_and_model_args_to_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(tgi_reply) as server:
        monkeypatch.setenv("HF_INFERENCE_BASE_URL", server.url)
        model = evalkit.get_model(f"hf-inference/{HUB_ID}", headers={"X-Trace": "evalkit"}, bill_to="my-org")
        output = generate_and_close(model, "ANSWER: routed", GenerateConfig(max_tokens=1))
    [request] = server.requests
    assert request.path == "/v1/chat/completions" and request.json()["model"] == HUB_ID
    assert (request.headers["x-trace"], request.headers["x-hf-bill-to"]) == ("evalkit", "my-org")
    assert (output.completion, output.stop_reason, output.model) == ("routed", "stop", f"{HUB_ID}-served")


def test_hub_ids_go_to_the_hf_inference_router(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hf_inference.ROUTER == "https://router.huggingface.co/hf-inference"
    with RecordingServer(tgi_reply) as server:
        monkeypatch.setattr(hf_inference, "ROUTER", f"{server.url}/hf-inference")  # the router, served locally
        assert generate_and_close(evalkit.get_model(f"hf-inference/{HUB_ID}"), "ANSWER: hub").completion == "hub"
        assert embed_and_close(evalkit.get_model("hf-inference/BAAI/bge-small-en-v1.5"), ["x y"]) == [embedding("x y")]
    chat, features = server.requests
    assert chat.path == f"/hf-inference/models/{HUB_ID}/v1/chat/completions" and chat.json()["model"] == HUB_ID
    assert features.path == "/hf-inference/models/BAAI/bge-small-en-v1.5/pipeline/feature-extraction"
    assert features.json() == {"inputs": ["x y"]}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)


def test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(EvalkitError, match="provider 'hf-inference' needs HF_TOKEN or HF_INFERENCE_BASE_URL"):
        evalkit.get_model(f"hf-inference/{HUB_ID}")
    with RecordingServer(tgi_reply) as server:  # a dedicated server without auth needs no token
        assert generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: open").completion == "open"
    assert "authorization" not in server.requests[0].headers


SAVED = "hf_saved_login_token"


def test_a_saved_login_goes_only_to_hugging_face(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The token `hf auth login` saved reaches the router but no other server; HF_TOKEN and
    `-M token` go wherever the user points the model."""
    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "no-token").write_text(SAVED)  # the token file the fixture points huggingface_hub at
    with RecordingServer(tgi_reply) as server:
        monkeypatch.setattr(hf_inference, "ROUTER", f"{server.url}/hf-inference")  # the router, served locally
        generate_and_close(evalkit.get_model(f"hf-inference/{HUB_ID}"), "ANSWER: router")
        generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: elsewhere")
        assert embed_and_close(evalkit.get_model(f"hf-inference/{server.url}"), ["x"]) == [embedding("x")]
        elsewhere = evalkit.get_model(f"hf-inference/{HUB_ID}", base_url=server.url, headers={"X-Trace": "1"})
        generate_and_close(elsewhere, "ANSWER: base_url")
        generate_and_close(evalkit.get_model(f"hf-inference/{server.url}", token="hf_given"), "ANSWER: given")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: env")
    sent = [request.headers.get("authorization") for request in server.requests]
    assert sent == [f"Bearer {SAVED}", None, None, None, "Bearer hf_given", f"Bearer {TOKEN}"]


@pytest.mark.parametrize(("url", "saved"), [
    ("https://abc123.us-east-1.aws.endpoints.huggingface.cloud", True),
    ("https://router.huggingface.co/hf-inference/models/x", True),
    ("https://someone-tgi.hf.space", True),
    ("http://someone-tgi.hf.space", False),  # not over plain http
    ("https://huggingface.co.example.com", False),
    ("https://example.com/huggingface.co", False),
    ("https://tgi.internal:8080", False),
])
def test_which_hosts_get_the_saved_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, saved: bool) -> None:
    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "no-token").write_text(SAVED)
    assert hf_inference.is_hf_host(url) is saved
    assert evalkit.get_model(f"hf-inference/{url}").api.api_key == (SAVED if saved else None)


def test_offline_mode_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with RecordingServer(tgi_reply) as server:
        with pytest.raises(EvalkitError, match="HF_HUB_OFFLINE .* is set, and huggingface_hub sends no request in offline mode"):
            generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: never")
    assert server.requests == []


@pytest.mark.parametrize(("field", "value"), [("top_k", 5), ("reasoning_effort", "low"), ("parallel_tool_calls", False)])
def test_unsupported_fields_are_dropped_with_a_warning(field: str, value: Any) -> None:
    with RecordingServer(tgi_reply) as server:
        with pytest.warns(UserWarning, match=f"'hf-inference' does not support {field}"):
            output = generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: kept",
                                        GenerateConfig(**{field: value}))
    assert set(server.requests[0].json()) == {"model", "messages", "stream"} and output.completion == "kept"


def test_response_schema_becomes_tgi_grammar() -> None:
    schema = ResponseSchema("answer", {"type": "object", "properties": {"value": {"type": "integer"}}})
    with RecordingServer(tgi_reply) as server:
        generate_and_close(evalkit.get_model(f"hf-inference/{server.url}"), "ANSWER: {}", GenerateConfig(response_schema=schema))
    assert server.requests[0].json()["response_format"] == {"type": "json_object", "value": schema.json_schema}


@pytest.mark.parametrize(("status", "message"), [
    (401, "hf-inference: authentication failed \\(HTTP 401\\); check HF_TOKEN: Authorization header is invalid"),
    (404, "hf-inference: model '.*' or its endpoint was not found \\(HTTP 404\\): Model not found"),
    (422, "hf-inference: request rejected \\(HTTP 422\\): Input validation error: `max_tokens` must be > 0"),
])
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    detail = {401: "Authorization header is invalid", 404: "Model not found",
              422: "Input validation error: `max_tokens` must be > 0"}[status]
    check_not_retried(endpoint, tgi_error(status, detail), f"^{message}$")


def test_rate_limits_server_errors_and_dropped_connections_are_retried() -> None:
    check_retried(endpoint, [tgi_error(429, "Model is overloaded", {"Retry-After": str(RETRY_AFTER)}),
                             tgi_error(500, "internal"), Reply(drop=True), tgi_error(503, "loading")], tgi_reply)


def test_malformed_replies_are_clear_errors() -> None:
    check_not_retried(endpoint, Reply(body='{"truncated": '), "hf-inference/http://.*: the reply is not JSON", Exception)


def test_embeddings_pooled_and_per_token() -> None:
    texts = ["first text", "a second, longer text", "third"]
    with RecordingServer(tgi_reply) as server:
        model = evalkit.get_model(f"hf-inference/{server.url}")
        assert model.api.embed_batch_size() == 32
        assert embed_and_close(model, texts) == [embedding(t) for t in texts]
    [request] = server.requests
    assert (request.path, request.json(), request.headers["authorization"]) == ("/", {"inputs": texts}, f"Bearer {TOKEN}")
    with RecordingServer(tgi_handler(per_token=True)) as server:
        model = evalkit.get_model(f"hf-inference/{server.url}")
        pooled = embed_and_close(model, ["ab cdef", "xy zz"])  # two tokens each: mean-pooled
        with pytest.raises(Exception, match="per-token vectors of different lengths"):
            embed_and_close(evalkit.get_model(f"hf-inference/{server.url}"), ["one", "two words"])
    mean = lambda a, b: [(x + y) / 2 for x, y in zip(embedding(a), embedding(b))]  # noqa: E731
    assert pooled == [mean("ab", "cdef"), mean("xy", "zz")]


def test_model_embed_batches_by_32_and_retries() -> None:
    vectors, _ = check_model_embed(endpoint, [tgi_error(429, "Model is overloaded", {"Retry-After": "0"}), Reply(drop=True)],
                                   tgi_reply, "inputs", batch=32)
    assert vectors == [embedding(t) for t in numbered_texts(36)]


def run_tools_eval(server: RecordingServer, solver: Any, log_dir: Path) -> Any:
    task = Task(dataset=[Sample(input="What is 1 + 2?", target="3")], solver=solver, scorer=includes())
    [log] = eval(task, model=f"hf-inference/{server.url}", log_dir=log_dir, display="none")
    assert log.status == "success", log
    return read_eval_log(log.location)


def test_tool_round_trip_through_eval(log_dir: Path) -> None:
    turns = [{"tool_calls": [tgi_tool_call("0", "add", {"x": 1, "y": 2}), tgi_tool_call("1", "add", '{"x": oops')]},
             {"content": "The answer is 3."}]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_tools_eval(server, [use_tools(add()), generate()], log_dir)
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == [{"type": "function", "function": {"name": "add", "description": "Add two whole numbers.",
                                                                "parameters": ADD_PARAMETERS}}]
    assert second["messages"][1]["tool_calls"][0] == {
        "id": "0", "type": "function", "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}}
    assert second["messages"][2] == {"role": "tool", "tool_call_id": "0", "content": "3"}
    assert second["messages"][3]["role"] == "tool" and second["messages"][3]["content"].startswith("Error: ")
    sample = log.samples[0]
    calls = sample.chat_messages[1].tool_calls
    assert calls[0] == ToolCall("0", "add", {"x": 1, "y": 2}) and calls[1].parse_error is not None
    assert sample.output["completion"] == "The answer is 3." and sample.scores["includes"]["value"] == "C"


@pytest.mark.parametrize(("choice", "wire"), [
    ("any", "required"), ("none", "none"), ("auto", "auto"), (ToolFunction("add"), {"function": {"name": "add"}}),
])
def test_tool_choice(choice: Any, wire: Any) -> None:
    with RecordingServer(scripted_turns([{"tool_calls": [tgi_tool_call("0", "add", {"x": 4})]}])) as server:
        model = evalkit.get_model(f"hf-inference/{server.url}")

        async def run() -> Any:
            try:
                return await model.generate("Add 4.", tools=[add()], tool_choice=choice)
            finally:
                await model.aclose()

        output = anyio.run(run)
    assert server.requests[0].json()["tool_choice"] == wire
    assert output.stop_reason == "tool_calls" and output.message.tool_calls == [ToolCall("0", "add", {"x": 4})]


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(tgi_reply) as server:
        env = {"HF_TOKEN": "hf_cli_token", "HF_INFERENCE_BASE_URL": server.url, "HF_HUB_OFFLINE": "0"}
        result = cli_eval("hf-inference/tgi", tmp_path / "logs", "-M", "headers={X-Trace: cli}", limit=2, cwd=tmp_path,
                          timeout=120, env=env)
    log = cli_log(result, tmp_path / "logs", "hf_cli_token")
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.headers["authorization"] == "Bearer hf_cli_token" and request.headers["x-trace"] == "cli"
        body = request.json()
        assert body["model"] == "tgi" and body["messages"][0] == {"role": "system", "content": "Answer in a few words."}
        assert (body["max_tokens"], body["temperature"]) == (32, 0.0)
    assert all(s.output["completion"] == "Default reply" for s in log.samples)