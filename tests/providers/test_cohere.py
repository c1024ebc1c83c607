"""The cohere provider: the real cohere SDK (AsyncClientV2) talking HTTP to a local v2 Chat
and Embed server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    ContentImage,
    ContentReasoning,
    ContentText,
    GenerateConfig,
    ResponseSchema,
    Sample,
    Task,
    eval,
    read_eval_log,
)
from evalkit.errors import EvalkitError, ModelArgsError
from evalkit.model import api
from evalkit.scorer import embedding_similarity, includes
from evalkit.solver import generate, use_tools
from evalkit.tool import ToolCall, ToolFunction
from tests.providers.helpers import (
    RETRY_AFTER, check_cli_error, check_model_embed, check_not_retried, check_retried, cli_eval, cli_log,
    embed_and_close, generate_and_close, isolate_env, numbered_texts,
)
from tests.servers.cohere_server import chat, cohere_reply, embedding, error, scripted_turns, tool_call
from tests.servers.http import RecordingServer, Reply
from tests.tools import ADD_PARAMETERS, add

KEY = "co-test-0123456789"
ENV = ("COHERE_API_KEY", "CO_API_KEY", "COHERE_BASE_URL", "CO_API_URL")
MODEL = "cohere/command-a-03-2025"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key; warnings shown again."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, COHERE_API_KEY=KEY)
    monkeypatch.setattr(api, "_warned", set())



def test_chat_request_and_reply() -> None:
    messages = [ChatMessageSystem("Be brief."), ChatMessageUser("First."), ChatMessageAssistant("Noted."),
                ChatMessageUser("Now answer. ANSWER: forty two")]
    config = GenerateConfig(max_tokens=10, temperature=0.2, top_p=0.8, top_k=20, stop_seqs=("STOP",), seed=7,
                            frequency_penalty=0.1, presence_penalty=0.3)
    with RecordingServer(cohere_reply) as server:
        output = generate_and_close(evalkit.get_model(MODEL, base_url=server.url), messages, config)
    [request] = server.requests
    assert request.path == "/v2/chat"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "command-a-03-2025", "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "First."},
                     {"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Now answer. ANSWER: forty two"}],
        "max_tokens": 10, "temperature": 0.2, "p": 0.8, "k": 20, "stop_sequences": ["STOP"], "seed": 7,
        "frequency_penalty": 0.1, "presence_penalty": 0.3,
    }
    assert (output.completion, output.stop_reason, output.model) == ("forty two", "stop", "command-a-03-2025")
    prompt_words = 2 + 1 + 1 + 5
    assert output.usage == evalkit.ModelUsage(prompt_words + 3, 2, prompt_words + 3 + 2)  # usage.tokens, not billed_units


def test_stop_reasons_and_logprobs() -> None:
    with RecordingServer(cohere_reply) as server:
        model = evalkit.get_model(MODEL, base_url=server.url)

        async def run() -> list[Any]:
            outputs = [await model.generate("ANSWER: one two three", GenerateConfig(max_tokens=2)),
                       await model.generate("ANSWER: one STOP two", GenerateConfig(stop_seqs=(" STOP",))),
                       await model.generate("ANSWER: one two", GenerateConfig(logprobs=True))]
            await model.aclose()
            return outputs

        cut, stopped, with_logprobs = anyio.run(run)
    assert (cut.completion, cut.stop_reason) == ("one two", "max_tokens")
    assert (stopped.completion, stopped.stop_reason) == ("one", "stop")
    assert server.requests[2].json()["logprobs"] is True
    assert [(lp.token, lp.logprob) for lp in with_logprobs.choices[0].logprobs] == [("one", -0.75), ("two", -0.75)]


def test_response_schema_and_thinking_budget() -> None:
    schema = ResponseSchema("answer", {"type": "object", "properties": {"value": {"type": "integer"}}})
    with RecordingServer(cohere_reply) as server:
        generate_and_close(evalkit.get_model(MODEL, base_url=server.url), "ANSWER: {}",
                           GenerateConfig(response_schema=schema, reasoning_tokens=512))
    body = server.requests[0].json()
    assert body["response_format"] == {"type": "json_object", "json_schema": schema.json_schema}
    assert body["thinking"] == {"type": "enabled", "token_budget": 512}


@pytest.mark.parametrize(("field", "value"), [("top_logprobs", 2), ("reasoning_effort", "low"), ("num_choices", 2)])
def test_unsupported_fields_are_dropped_with_a_warning(field: str, value: Any) -> None:
    with RecordingServer(cohere_reply) as server:
        with pytest.warns(UserWarning, match=f"'cohere' does not support {field}"):
            output = generate_and_close(evalkit.get_model(MODEL, base_url=server.url), "ANSWER: kept",
                                        GenerateConfig(**{field: value}))
    assert set(server.requests[0].json()) == {"model", "messages", "stream"}
    assert output.completion == "kept"


def test_environment_and_model_args_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHERE_API_KEY")
    monkeypatch.setenv("CO_API_KEY", "co-sdk-variable")
    with RecordingServer(cohere_reply) as server:
        monkeypatch.setenv("COHERE_BASE_URL", server.url)
        model = evalkit.get_model(MODEL, client_name="evalkit-test")
        assert generate_and_close(model, "ANSWER: env").completion == "env"
    [request] = server.requests
    assert request.headers["authorization"] == "Bearer co-sdk-variable"
    assert request.headers["x-client-name"] == "evalkit-test"
    with pytest.raises(ModelArgsError, match="bogus_option"):
        evalkit.get_model(MODEL, bogus_option=True)


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHERE_API_KEY")
    with pytest.raises(EvalkitError, match="provider 'cohere' needs COHERE_API_KEY"):
        evalkit.get_model(MODEL)


def command(url: str) -> evalkit.Model:
    return evalkit.get_model(MODEL, base_url=url)


@pytest.mark.parametrize(("status", "message"), [
    (400, "cohere: request rejected \\(HTTP 400\\): invalid request: bad field"),
    (401, "cohere: authentication failed \\(HTTP 401\\); check COHERE_API_KEY: invalid api token"),
    (404, "cohere: model 'command-a-03-2025' or its endpoint was not found \\(HTTP 404\\): model not found"),
])
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    detail = {400: "invalid request: bad field", 401: "invalid api token", 404: "model not found"}[status]
    check_not_retried(command, error(status, detail), f"^{message}$")


def test_rate_limits_server_errors_and_dropped_connections_are_retried() -> None:  # the SDK's own retries are off
    check_retried(command, [error(429, "too many requests", {"Retry-After": str(RETRY_AFTER)}), error(500, "internal"),
                            Reply(drop=True), error(503, "unavailable")], cohere_reply)


def test_malformed_replies_are_clear_errors() -> None:
    check_not_retried(command, Reply(body='{"truncated": '), "cohere/command-a-03-2025: the reply is not JSON \\(HTTP 200\\)",
                      Exception)


def test_embeddings_request_and_vectors() -> None:
    texts = ["first text", "a second, longer text", "third"]
    with RecordingServer(cohere_reply) as server:
        vectors = embed_and_close(evalkit.get_model("cohere/embed-v4.0", base_url=server.url), texts)
        query = embed_and_close(evalkit.get_model("cohere/embed-v4.0", base_url=server.url, input_type="search_query"),
                                ["q"])
    assert vectors == [embedding(t) for t in texts] and query == [embedding("q")]
    first, second = server.requests
    assert first.path == "/v2/embed" and first.headers["authorization"] == f"Bearer {KEY}"
    assert first.json() == {"model": "embed-v4.0", "texts": texts, "input_type": "search_document",
                            "embedding_types": ["float"]}
    assert second.json()["input_type"] == "search_query"


def test_model_embed_batches_by_96_and_retries() -> None:
    vectors, _ = check_model_embed(lambda url: evalkit.get_model("cohere/embed-v4.0", base_url=url),
                                   [error(429, "too many requests", {"Retry-After": "0"}), error(503, "unavailable")],
                                   cohere_reply, "texts", batch=96)
    assert vectors == [embedding(t) for t in numbered_texts(100)]


def test_embedding_similarity_scorer_through_eval(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    task = Task(dataset=[Sample(input="Capital of Japan? ANSWER: Tokyo", target="Tokyo")], solver=generate(),
                scorer=embedding_similarity(model="cohere/embed-v4.0", threshold=0.99))
    with RecordingServer(cohere_reply) as server:
        monkeypatch.setenv("COHERE_BASE_URL", server.url)
        [log] = eval(task, model=MODEL, log_dir=log_dir, display="none")
        assert log.status == "success", log
    embeds = [r.json() for r in server.requests if r.path == "/v2/embed"]
    assert sorted(t for body in embeds for t in body["texts"]) == ["Tokyo", "Tokyo"]
    [sample] = read_eval_log(log.location).samples
    assert sample.scores["embedding_similarity"]["value"] == {"similarity": pytest.approx(1.0), "correct": "C"}


def test_embedding_errors_are_one_line() -> None:
    with RecordingServer(lambda request: error(401, "invalid api token")) as server:
        with pytest.raises(EvalkitError, match="authentication failed \\(HTTP 401\\); check COHERE_API_KEY"):
            embed_and_close(evalkit.get_model("cohere/embed-v4.0", base_url=server.url), ["x"])


def run_tools_eval(server: RecordingServer, solver: Any, log_dir: Path) -> Any:
    task = Task(dataset=[Sample(input="What is 1 + 2?", target="3")], solver=solver, scorer=includes())
    [log] = eval(task, model=MODEL, model_args={"base_url": server.url}, log_dir=log_dir, display="none")
    assert log.status == "success", log
    return read_eval_log(log.location)


def test_tool_round_trip_through_eval(log_dir: Path) -> None:
    turns = [{"tool_plan": "I will add the numbers.",
              "tool_calls": [tool_call("call_1", "add", '{"x": 1, "y": 2}'), tool_call("call_2", "add", '{"x": oops')]},
             {"content": [{"type": "text", "text": "The answer is 3."}]}]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_tools_eval(server, [use_tools(add()), generate()], log_dir)
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == [{"type": "function", "function": {"name": "add", "description": "Add two whole numbers.",
                                                                "parameters": ADD_PARAMETERS}}]
    assert "tool_choice" not in first
    assert second["messages"][1:] == [
        {"role": "assistant", "tool_plan": "I will add the numbers.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}},
            {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3"},
        {"role": "tool", "tool_call_id": "call_2", "content": second["messages"][3]["content"]},
    ]
    assert second["messages"][3]["content"].startswith("Error: ")
    sample = log.samples[0]
    assistant = sample.chat_messages[1]
    assert assistant.text == "I will add the numbers."
    assert assistant.tool_calls[0] == ToolCall("call_1", "add", {"x": 1, "y": 2})
    assert assistant.tool_calls[1].parse_error is not None
    assert sample.output["completion"] == "The answer is 3." and sample.scores["includes"]["value"] == "C"


@pytest.mark.parametrize(("choice", "wire", "offered"), [
    ("any", "REQUIRED", ["add", "lookup"]), ("none", "NONE", ["add", "lookup"]), ("auto", None, ["add", "lookup"]),
    (ToolFunction("add"), "REQUIRED", ["add"]),
])
def test_tool_choice(choice: Any, wire: str | None, offered: list[str]) -> None:
    from tests.providers.test_bedrock_tools import lookup

    turns = [{"tool_calls": [tool_call("c1", "add", '{"x": 4}')]}]
    with RecordingServer(scripted_turns(turns)) as server:
        model = evalkit.get_model(MODEL, base_url=server.url)

        async def run() -> Any:
            try:
                return await model.generate("Add 4.", tools=[add(), lookup()], tool_choice=choice)
            finally:
                await model.aclose()

        output = anyio.run(run)
    body = server.requests[0].json()
    assert body.get("tool_choice") == wire and [t["function"]["name"] for t in body["tools"]] == offered
    assert output.stop_reason == "tool_calls" and output.message.tool_calls == [ToolCall("c1", "add", {"x": 4})]


def test_history_with_tool_results_is_sent_in_the_v2_shape() -> None:
    messages = [ChatMessageUser("Add 1 and 2."),
                ChatMessageAssistant("", tool_calls=[ToolCall("c1", "add", {"x": 1, "y": 2})]),
                ChatMessageTool("3", tool_call_id="c1", function="add"),
                ChatMessageUser("ANSWER: 3")]
    with RecordingServer(cohere_reply) as server:
        assert generate_and_close(evalkit.get_model(MODEL, base_url=server.url), messages).completion == "3"
    assert server.requests[0].json()["messages"][1:3] == [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]


def test_images_and_reasoning_in_the_reply() -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    messages = [ChatMessageUser([ContentText("What is this? ANSWER: a dot"), ContentImage(image, detail="low")])]

    def reply(request: Any) -> Reply:
        return chat(request.json(), {"content": [{"type": "thinking", "thinking": "Looks round."},
                                                 {"type": "text", "text": "a dot"}]}, "COMPLETE", 2)

    with RecordingServer(reply) as server:
        output = generate_and_close(evalkit.get_model(MODEL, base_url=server.url), messages)
    assert server.requests[0].json()["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this? ANSWER: a dot"},
        {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]}]
    assert output.message.content == [ContentReasoning("Looks round."), ContentText("a dot")]
    assert output.completion == "a dot"


def test_cli_eval(tmp_path: Path) -> None:
    with RecordingServer(cohere_reply) as server:
        result = cli_eval(MODEL, tmp_path / "logs", "-M", "client_name=evalkit-cli", limit=2, cwd=tmp_path, timeout=120,
                          env={"COHERE_API_KEY": "cli-cohere-key", "COHERE_BASE_URL": server.url})
    log = cli_log(result, tmp_path / "logs", "cli-cohere-key")
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.headers["authorization"] == "Bearer cli-cohere-key" and request.headers["x-client-name"] == "evalkit-cli"
        body = request.json()
        assert body["messages"][0] == {"role": "system", "content": "Answer in a few words."}
        assert (body["max_tokens"], body["temperature"]) == (32, 0.0)
    assert all(s.output["completion"] == "Default reply" for s in log.samples)


def test_cli_bad_key_is_one_line(tmp_path: Path) -> None:
    with RecordingServer(lambda request: error(401, "invalid api token")) as server:
        result = cli_eval(MODEL, tmp_path / "logs", cwd=tmp_path, timeout=120,
                          env={"COHERE_API_KEY": "wrong", "COHERE_BASE_URL": server.url})
    check_cli_error(result, "authentication failed (HTTP 401); check COHERE_API_KEY: invalid api token")