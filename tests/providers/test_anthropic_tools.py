"""Tools, images and extended thinking on the anthropic provider: the real anthropic SDK
talking HTTP to a local Messages API server that scripts the model's turns."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

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
    Sample,
    Task,
    eval,
)
from evalkit.errors import ImagesUnsupportedError
from evalkit.model import api
from evalkit.scorer import includes, match
from evalkit.solver import basic_agent, generate, use_tools
from evalkit.tool import ToolCall, ToolError, ToolFunction, tool
from tests.tools import ADD_PARAMETERS, add
from tests.providers.helpers import isolate_env, set_fake_aws_env
from tests.providers.test_anthropic import ENV, KEY
from tests.servers.anthropic_server import (
    redacted_thinking,
    scripted_turns,
    text,
    thinking,
    tool_results,
    tool_use,
)
from tests.servers.http import RecordingServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine; a test key; warnings shown again in every test."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, ANTHROPIC_API_KEY=KEY)
    monkeypatch.setattr(api, "_warned", set())




@tool
def divide() -> Any:
    async def execute(x: int, y: int) -> float:
        """Divide x by y.

        Args:
            x: The dividend.
            y: The divisor.
        """
        if y == 0:
            raise ToolError("cannot divide by zero")
        return x / y

    return execute


@tool
def picture() -> Any:
    async def execute() -> list[ContentText | ContentImage]:
        """Take a picture."""
        return [ContentText("a red dot"), ContentImage(f"data:image/png;base64,{base64.b64encode(PNG).decode()}")]

    return execute


def run_eval(server: RecordingServer, solver: Any, log_dir: Path, input: Any = "What is 1 + 2?", **config: Any) -> Any:
    task = Task(dataset=[Sample(input=input, target="3")], solver=solver, scorer=includes())
    [log] = eval(task, model="anthropic/claude-sonnet-4-5", model_args={"base_url": server.url}, log_dir=log_dir,
                 display="none", **config)
    assert log.status == "success", log
    return evalkit.read_eval_log(log.location)


def final_answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The scripted last turn: the tool results the model was sent, echoed."""
    results = tool_results(body)
    return [text("Results: " + "; ".join(str(r.get("content")) for r in results) + ". The answer is 3")]


def test_tool_loop_parallel_calls_errors_and_unknown_tool_through_eval(log_dir: Path) -> None:
    turns = [
        [text("Let me work it out."), tool_use("toolu_1", "add", {"x": 1, "y": 2}),
         tool_use("toolu_2", "divide", {"x": 1, "y": 0}), tool_use("toolu_3", "nope", {})],
        final_answer,
    ]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_eval(server, [use_tools(add(), divide(), tool_choice=ToolFunction("add")), generate()], log_dir)
    first, second = (r.json() for r in server.requests)
    assert first["tools"][0] == {"name": "add", "description": "Add two whole numbers.", "input_schema": ADD_PARAMETERS}
    assert [t["name"] for t in first["tools"]] == ["add", "divide"]
    assert first["tool_choice"] == {"type": "tool", "name": "add"}
    assert second["tool_choice"] == {"type": "auto"}  # a forced choice applies to the first call only
    assert second["messages"][1] == {"role": "assistant", "content": turns[0]}
    assert second["messages"][2:] == [{"role": "user", "content": [  # the three results in ONE user turn
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "cannot divide by zero", "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_3", "content": "there is no tool named 'nope' (tools: add, divide)",
         "is_error": True},
    ]}]
    sample = log.samples[0]
    messages = sample.chat_messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    assert messages[1].text == "Let me work it out."
    assert [(c.id, c.function, c.arguments) for c in messages[1].tool_calls] == [
        ("toolu_1", "add", {"x": 1, "y": 2}), ("toolu_2", "divide", {"x": 1, "y": 0}), ("toolu_3", "nope", {})]
    assert [(m.tool_call_id, m.error and m.error.type) for m in messages[2:5]] == [
        ("toolu_1", None), ("toolu_2", "unknown"), ("toolu_3", "parsing")]
    assert sample.output["completion"].endswith("The answer is 3") and sample.scores["includes"]["value"] == "C"


def test_basic_agent_submits_through_a_tool_call(log_dir: Path) -> None:
    turns = [
        [tool_use("toolu_a", "add", {"x": 1, "y": 2})],
        [text("Submitting."), tool_use("toolu_s", "submit", {"answer": "3"})],
    ]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_eval(server, basic_agent(tools=[add()]), log_dir, parallel_tool_calls=False)
    first, second = (r.json() for r in server.requests)
    assert [t["name"] for t in first["tools"]] == ["add", "submit"]
    assert first["tools"][1]["input_schema"]["required"] == ["answer"]
    assert first["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "call the submit() tool" in first["system"]
    assert second["messages"][-1] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "3"}]}
    sample = log.samples[0]
    assert sample.output["completion"] == "3" and sample.scores["includes"]["value"] == "C"
    assert [m.role for m in sample.chat_messages] == ["system", "user", "assistant", "tool", "assistant", "tool"]


def generate_once(server: RecordingServer, input: Any, **kwargs: Any) -> evalkit.ModelOutput:
    async def main() -> evalkit.ModelOutput:
        model = evalkit.get_model("anthropic/claude-sonnet-4-5", base_url=server.url)
        try:
            return await model.generate(input, **kwargs)
        finally:
            await model.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        ("auto", None, {"type": "auto"}),
        ("any", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (ToolFunction("divide"), None, {"type": "tool", "name": "divide"}),
        ("any", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_and_parallel_calls_in_the_request(choice: Any, parallel: bool | None, wire: Any) -> None:
    turns = [[tool_use("toolu_1", "add", {"x": 2}), tool_use("toolu_2", "divide", {"x": 4, "y": 2})]]
    with RecordingServer(scripted_turns(turns)) as server:
        output = generate_once(server, "Go.", tools=[add(), divide()], tool_choice=choice,
                               config=GenerateConfig(parallel_tool_calls=parallel))
    body = server.requests[0].json()
    assert body.get("tool_choice") == wire and len(body["tools"]) == 2
    assert output.stop_reason == "tool_calls" and output.completion == ""
    assert [(c.function, c.arguments) for c in output.message.tool_calls] == [("add", {"x": 2}), ("divide", {"x": 4, "y": 2})]


def test_no_tools_sends_no_tool_fields() -> None:
    with RecordingServer(scripted_turns([[text("plain")]])) as server:
        output = generate_once(server, "Hi.", tools=[], config=GenerateConfig(parallel_tool_calls=False))
    assert set(server.requests[0].json()) == {"model", "max_tokens", "messages"}
    assert (output.completion, output.stop_reason, output.message.tool_calls) == ("plain", "stop", None)


def test_extended_thinking_round_trip(log_dir: Path) -> None:
    turns = [
        [thinking("1 plus 2 is 3; check with the tool.", "sig-abc"), redacted_thinking("ENCRYPTED=="),
         tool_use("toolu_1", "add", {"x": 1, "y": 2})],
        [thinking("The tool agrees.", "sig-def"), text("The answer is 3")],
    ]
    with RecordingServer(scripted_turns(turns)) as server:
        with pytest.warns(UserWarning, match="'anthropic' does not support temperature; .*extended thinking"):
            log = run_eval(server, [use_tools(add()), generate()], log_dir, reasoning_tokens=2048, max_tokens=100,
                           temperature=0.5)
    first, second = (r.json() for r in server.requests)
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["max_tokens"] == 2048 + 100 and "temperature" not in first
    assert second["messages"][1] == {"role": "assistant", "content": turns[0]}  # thinking sent back unchanged
    messages = log.samples[0].chat_messages
    assert messages[1].content == [ContentReasoning("1 plus 2 is 3; check with the tool.", signature="sig-abc"),
                                   ContentReasoning("ENCRYPTED==", redacted=True)]
    assert messages[1].tool_calls[0].arguments == {"x": 1, "y": 2}
    assert messages[3].content == [ContentReasoning("The tool agrees.", signature="sig-def"), ContentText("The answer is 3")]
    assert log.samples[0].output["completion"] == "The answer is 3"


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 1024), ("medium", 4096), ("high", 16384)])
def test_reasoning_effort_is_a_thinking_budget(effort: str, budget: int) -> None:
    with RecordingServer(scripted_turns([[thinking("hm", "s"), text("ok")]])) as server:
        with pytest.warns(UserWarning, match="'anthropic' does not support top_k; .*extended thinking"):
            output = generate_once(server, "Hi.", config=GenerateConfig(reasoning_effort=effort, top_k=5))
    body = server.requests[0].json()
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 4096 and "top_k" not in body
    assert output.completion == "ok" and output.message.content[0] == ContentReasoning("hm", signature="s")


def test_reasoning_tokens_win_over_effort_and_response_schema_warns() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    with RecordingServer(scripted_turns([[text("{}")]])) as server:
        with pytest.warns(UserWarning, match="'anthropic' does not support response_schema"):
            generate_once(server, "Hi.", config=GenerateConfig(reasoning_effort="high", reasoning_tokens=1500,
                                                               response_schema=schema))
    body = server.requests[0].json()
    assert body["thinking"]["budget_tokens"] == 1500 and "response_schema" not in str(body)


def test_images_in_prompts_and_tool_results(tmp_path: Path, log_dir: Path) -> None:
    (tmp_path / "dot.png").write_bytes(PNG)
    encoded = base64.b64encode(PNG).decode()
    prompt = ChatMessageUser([ContentText("What is in these?"), ContentImage(str(tmp_path / "dot.png")),
                              ContentImage(f"data:image/jpeg;base64,{encoded}"), ContentImage("https://example.com/cat.png")])
    turns = [[tool_use("toolu_p", "picture", {})], [text("A red dot: 3")]]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_eval(server, [use_tools(picture()), generate()], log_dir, input=[prompt])
    first, second = (r.json() for r in server.requests)
    png, jpeg = ({"type": "base64", "media_type": mime, "data": encoded} for mime in ("image/png", "image/jpeg"))
    assert first["messages"][0] == {"role": "user", "content": [
        {"type": "text", "text": "What is in these?"}, {"type": "image", "source": png}, {"type": "image", "source": jpeg},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},  # the API fetches it
    ]}
    assert second["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_p", "content": [
        {"type": "text", "text": "a red dot"}, {"type": "image", "source": png}]}]
    assert isinstance(log.samples[0].chat_messages[0].content[1], ContentImage)


def test_history_with_tool_calls_from_another_conversation() -> None:
    """A conversation given as messages: text + tool_use, results merged, a user turn after them."""
    history = [
        ChatMessageUser("Add."),
        ChatMessageAssistant([ContentReasoning("unsigned, from another provider"), ContentText("Adding.")],
                             tool_calls=[ToolCall("c1", "add", {"x": 1}), ToolCall("c2", "add", {"x": 2})]),
        ChatMessageTool("1", tool_call_id="c1", function="add"),
        ChatMessageTool("2", tool_call_id="c2", function="add"),
        ChatMessageUser("Now sum them."),
    ]
    with RecordingServer(scripted_turns([[text("3")]])) as server:
        assert generate_once(server, history, tools=[add()]).completion == "3"
    assert server.requests[0].json()["messages"] == [
        {"role": "user", "content": "Add."},
        {"role": "assistant", "content": [text("Adding."), tool_use("c1", "add", {"x": 1}), tool_use("c2", "add", {"x": 2})]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "1"},
                                     {"type": "tool_result", "tool_use_id": "c2", "content": "2"}, text("Now sum them.")]},
    ]


def test_bedrock_variant_sends_tools_in_the_same_shape(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    set_fake_aws_env(monkeypatch, "eu-west-2")
    turns = [[tool_use("toolu_1", "add", {"x": 1, "y": 2})], final_answer]
    with RecordingServer(scripted_turns(turns)) as server:
        monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", server.url)
        task = Task(dataset=[Sample(input="What is 1 + 2?", target="3")], solver=[use_tools(add()), generate()],
                    scorer=match(location="end"))
        [log] = eval(task, model="anthropic/bedrock/anthropic.claude-sonnet-4-5-v1:0", log_dir=log_dir, display="none",
                     reasoning_tokens=1024)
    assert log.status == "success"
    first, second = server.requests
    assert first.path == "/model/anthropic.claude-sonnet-4-5-v1:0/invoke"
    body = first.json()
    assert body["anthropic_version"] and "model" not in body
    assert body["tools"] == [{"name": "add", "description": "Add two whole numbers.", "input_schema": ADD_PARAMETERS}]
    assert body["tool_choice"] == {"type": "auto"} and body["thinking"]["budget_tokens"] == 1024
    assert second.json()["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "3"}]
    assert evalkit.read_eval_log(log.location).samples[0].scores["match"]["value"] == "C"


def test_tool_input_that_is_not_an_object_is_a_tool_error_the_model_sees(log_dir: Path) -> None:
    turns = [[tool_use("toolu_1", "add", '{"x": 1,'), tool_use("toolu_2", "add", [1, 2])], final_answer]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_eval(server, [use_tools(add()), generate()], log_dir)
    bad_json, not_object = tool_results(server.requests[1].json())
    assert bad_json["is_error"] and "not valid JSON" in bad_json["content"]
    assert not_object["is_error"] and "must be a JSON object, not list" in not_object["content"]
    assert [m.role for m in log.samples[0].chat_messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert log.samples[0].scores["includes"]["value"] == "C"


def test_vertex_variant_sends_tools_in_the_same_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "my-project")
    monkeypatch.setenv("ANTHROPIC_VERTEX_REGION", "us-east5")
    with RecordingServer(scripted_turns([[tool_use("toolu_1", "divide", {"x": 6, "y": 3})]])) as server:
        monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", server.url)

        async def main() -> evalkit.ModelOutput:
            model = evalkit.get_model("anthropic/vertex/claude-sonnet-4@20250514", access_token="ya29.test-token")
            try:
                return await model.generate("Divide.", tools=[divide()], tool_choice="any")
            finally:
                await model.aclose()

        output = asyncio.run(main())
    [request] = server.requests
    assert request.path.endswith("/models/claude-sonnet-4@20250514:rawPredict")
    body = request.json()
    assert [t["name"] for t in body["tools"]] == ["divide"] and body["tool_choice"] == {"type": "any"}
    assert output.stop_reason == "tool_calls" and output.message.tool_calls[0].arguments == {"x": 6, "y": 3}


@pytest.mark.parametrize("choice", ["any", ToolFunction("add")])
def test_forced_tool_choice_with_thinking_sends_auto_and_warns(choice: Any, log_dir: Path) -> None:
    """The API refuses forced tool use with extended thinking (the server does too): auto goes instead."""
    turns = [[thinking("Use the tool.", "sig-1"), tool_use("toolu_1", "add", {"x": 1, "y": 2})], final_answer]
    with RecordingServer(scripted_turns(turns)) as server:
        with pytest.warns(UserWarning, match="'anthropic' does not support tool_choice; .*forced tool use is not allowed "
                                             "with extended thinking"):
            log = run_eval(server, [use_tools(add(), tool_choice=choice), generate()], log_dir, reasoning_tokens=2048)
    first, second = (r.json() for r in server.requests)
    assert first["tool_choice"] == second["tool_choice"] == {"type": "auto"}
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert log.samples[0].scores["includes"]["value"] == "C"


def test_forced_tool_choice_is_sent_as_is_only_without_thinking() -> None:
    with RecordingServer(scripted_turns([[tool_use("toolu_1", "add", {"x": 1})]])) as server:
        with pytest.warns(UserWarning, match="'anthropic' does not support tool_choice"):
            generate_once(server, "Add.", tools=[add()], tool_choice="any", config=GenerateConfig(reasoning_effort="low"))
        generate_once(server, "Add.", tools=[add()], tool_choice="any")
    assert [r.json().get("tool_choice") for r in server.requests] == [{"type": "auto"}, {"type": "any"}]


def test_an_empty_reply_goes_back_as_no_content_when_basic_agent_continues(log_dir: Path) -> None:
    """Claude may answer tool results with no content; basic_agent then asks it to go on, and the
    next request must not hold an empty turn (the server refuses one, as the API does)."""
    turns = [[tool_use("toolu_a", "add", {"x": 1, "y": 2})], [], [tool_use("toolu_s", "submit", {"answer": "3"})]]
    with RecordingServer(scripted_turns(turns)) as server:
        log = run_eval(server, basic_agent(tools=[add()]), log_dir)
    assert len(server.requests) == 3
    third = server.requests[2].json()["messages"]
    assert third[3] == {"role": "assistant", "content": "(no content)"}
    assert third[4]["role"] == "user" and "submit()" in third[4]["content"]
    sample = log.samples[0]
    assert sample.chat_messages[4] == ChatMessageAssistant("") and sample.scores["includes"]["value"] == "C"


def test_empty_messages_and_tool_results_go_as_no_content() -> None:
    history = [
        ChatMessageUser("Add."),
        ChatMessageAssistant([ContentReasoning("unsigned: left out")], tool_calls=None),
        ChatMessageUser(""),
        ChatMessageAssistant("", tool_calls=[ToolCall("c1", "add", {"x": 1}), ToolCall("c2", "add", {"x": 2})]),
        ChatMessageTool("", tool_call_id="c1", function="add"),
        ChatMessageTool([ContentText("  ")], tool_call_id="c2", function="add"),
    ]
    with RecordingServer(scripted_turns([[text("3")]])) as server:
        assert generate_once(server, history, tools=[add()]).completion == "3"
    assert server.requests[0].json()["messages"] == [
        {"role": "user", "content": "Add."},
        {"role": "assistant", "content": "(no content)"},
        {"role": "user", "content": "(no content)"},
        {"role": "assistant", "content": [tool_use("c1", "add", {"x": 1}), tool_use("c2", "add", {"x": 2})]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "(no content)"},
                                     {"type": "tool_result", "tool_use_id": "c2", "content": "(no content)"}]},
    ]


def test_tool_results_come_first_in_their_user_turn() -> None:
    """A user message between the calls and their results: the results still open the turn."""
    history = [
        ChatMessageUser("Add."),
        ChatMessageAssistant("Adding.", tool_calls=[ToolCall("c1", "add", {"x": 1})]),
        ChatMessageUser("Be quick."),
        ChatMessageTool("1", tool_call_id="c1", function="add"),
    ]
    with RecordingServer(scripted_turns([[text("1")]])) as server:
        assert generate_once(server, history, tools=[add()]).completion == "1"
    assert server.requests[0].json()["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": "1"}, text("Be quick.")]}


def test_an_image_in_a_system_message_fails_in_one_line() -> None:
    system = ChatMessageSystem([ContentText("Look:"), ContentImage("https://example.com/cat.png")])
    with RecordingServer(scripted_turns([[text("never")]])) as server:
        with pytest.raises(ImagesUnsupportedError, match="^provider 'anthropic' takes no images in system messages") as raised:
            generate_once(server, [system, ChatMessageUser("Hi.")])
    assert "\n" not in str(raised.value) and server.requests == []
