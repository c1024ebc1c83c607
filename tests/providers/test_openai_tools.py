"""Tools, images, reasoning and structured output on the openai provider and the
OpenAI-compatible services: the real openai SDK against a local server scripting the model's
turns (tool calls first, then a final answer)."""

from __future__ import annotations

import base64
import json
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
)
from evalkit.errors import ImagesUnsupportedError, ToolsUnsupportedError
from evalkit.scorer import includes
from evalkit.solver import basic_agent, generate, use_tools
from evalkit.tool import ToolCall, ToolCallError, ToolFunction, tool
from tests.tools import ADD_PARAMETERS, add
from tests.providers.helpers import generate_and_close, isolate_env
from tests.servers.http import RecordingServer, Request, Reply
from tests.servers.openai_server import checked, chat_reply, completion, message_text, openai_reply, tool_call

KEY = "sk-test-openai-0123456789"
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "DEEPSEEK_API_KEY",
       "DEEPSEEK_BASE_URL", "VLLM_API_KEY", "VLLM_BASE_URL", "OLLAMA_API_KEY", "OLLAMA_BASE_URL")

ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two whole numbers.",
        "parameters": ADD_PARAMETERS,
    },
}
"""What the openai provider must send for `add()`."""




@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a test key."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, OPENAI_API_KEY=KEY)


def ask(model: evalkit.Model, input: Any, **options: Any) -> evalkit.ModelOutput:
    """`model.generate(input, **options)` in a fresh event loop, closing the model afterwards."""

    async def main() -> evalkit.ModelOutput:
        try:
            return await model.generate(input, **options)
        finally:
            await model.aclose()

    return anyio.run(main)


def two_sums(request: Request) -> Reply:
    """A model that asks for add(1, 2) and add(3, 4) in one turn, then reports the results."""
    messages = request.json()["messages"]
    if messages[-1]["role"] == "user":
        return completion({"tool_calls": [tool_call("call_a", "add", '{"x": 1, "y": 2}'),
                                          tool_call("call_b", "add", '{"x": 3, "y": 4}')]}, "tool_calls")
    results = [m["content"] for m in messages if m["role"] == "tool"]
    return completion({"content": f"The sums are {' and '.join(results)}."})


SUMS_TASK = Task(
    dataset=[Sample(input="What are 1 + 2 and 3 + 4?", target="3 and 7")],
    solver=[use_tools(add(), tool_choice="any"), generate()],
    scorer=includes(),
)

SUMS_MESSAGES = [
    ChatMessageUser("What are 1 + 2 and 3 + 4?"),
    ChatMessageAssistant("", tool_calls=[ToolCall("call_a", "add", {"x": 1, "y": 2}), ToolCall("call_b", "add", {"x": 3, "y": 4})]),
    ChatMessageTool("3", tool_call_id="call_a", function="add"),
    ChatMessageTool("7", tool_call_id="call_b", function="add"),
    ChatMessageAssistant("The sums are 3 and 7."),
]
"""The sample's messages after the tool loop."""

SENT_BACK = [
    {"role": "user", "content": "What are 1 + 2 and 3 + 4?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"x": 1, "y": 2}'}},
        {"id": "call_b", "type": "function", "function": {"name": "add", "arguments": '{"x": 3, "y": 4}'}},
    ]},
    {"role": "tool", "tool_call_id": "call_a", "content": "3"},
    {"role": "tool", "tool_call_id": "call_b", "content": "7"},
]
"""The second request's messages: the calls, then both results under their call ids."""


def test_eval_runs_parallel_tool_calls_and_sends_both_results_back(tmp_path: Path) -> None:
    with RecordingServer(checked(two_sums)) as server:
        [log] = evalkit.eval(SUMS_TASK, model="openai/gpt-4o", model_args={"base_url": f"{server.url}/v1"},
                             log_dir=tmp_path / "logs", display="none", parallel_tool_calls=True)
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == second["tools"] == [ADD_TOOL]
    assert first["tool_choice"] == "required" and second["tool_choice"] == "auto"  # forced on the first call only
    assert first["parallel_tool_calls"] is True
    assert first["messages"] == SENT_BACK[:1] and second["messages"] == SENT_BACK
    assert log.status == "success" and log.footer["results"]["includes"]["accuracy"] == 1.0
    [sample] = evalkit.read_eval_log(next((tmp_path / "logs").glob("*.jsonl"))).samples
    assert sample.chat_messages == SUMS_MESSAGES
    assert sample.output["completion"] == "The sums are 3 and 7."


def test_a_compatible_service_runs_the_same_tool_loop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "together-key-0123456789")
    with RecordingServer(checked(two_sums)) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", f"{server.url}/v1")
        [log] = evalkit.eval(SUMS_TASK, model="together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
                             log_dir=tmp_path / "logs", display="none")
    first, second = (r.json() for r in server.requests)
    assert first["model"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert first["tools"] == [ADD_TOOL] and first["tool_choice"] == "required" and "parallel_tool_calls" not in first
    assert second["messages"] == SENT_BACK
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES


def test_malformed_arguments_and_an_unknown_tool_are_errors_the_model_sees(tmp_path: Path) -> None:
    def confused(request: Request) -> Reply:
        messages = request.json()["messages"]
        if messages[-1]["role"] == "user":
            return completion({"content": "Let me add.", "tool_calls": [
                tool_call("call_bad", "add", '{"x": 1, "y":'), tool_call("call_mul", "multiply", '{"x": 2, "y": 3}'),
            ]}, "tool_calls")
        return completion({"content": "The tools failed: " + " | ".join(m["content"] for m in messages if m["role"] == "tool")})

    task = Task(dataset=[Sample(input="Add 1 and 2.", target="3")], solver=[use_tools(add()), generate()], scorer=includes())
    with RecordingServer(confused) as server:
        [log] = evalkit.eval(task, model="openai/gpt-4o", model_args={"base_url": f"{server.url}/v1"},
                             log_dir=tmp_path / "logs", display="none")
    assert len(server.requests) == 2
    sent = server.requests[1].json()["messages"]
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == ["call_bad", "call_mul"]
    bad, unknown = (m["content"] for m in sent if m["role"] == "tool")
    assert bad.startswith("Error: the arguments are not valid JSON") and '{"x": 1, "y":' in bad
    assert unknown == "Error: there is no tool named 'multiply' (tools: add)"
    assert server.requests[0].json()["tool_choice"] == "auto"
    [sample] = log.samples
    assert sample.error is None and log.status == "success"
    _, turn, bad_result, unknown_result, final = sample.chat_messages
    assert turn.tool_calls is not None and turn.tool_calls[0].parse_error is not None and turn.text == "Let me add."
    assert bad_result.error is not None and bad_result.error.type == "parsing" and bad_result.tool_call_id == "call_bad"
    assert unknown_result.error == ToolCallError("parsing", "there is no tool named 'multiply' (tools: add)")
    assert final.text == f"The tools failed: {bad} | {unknown}"


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("auto", "auto"), ("any", "required"), ("none", "none"),
     (ToolFunction("add"), {"type": "function", "function": {"name": "add"}})],
)
def test_generate_maps_tool_choice_and_reads_tool_calls_back(choice: Any, sent: Any) -> None:
    reply = completion({"tool_calls": [tool_call("call_1", "add", '{"x": 5, "y": 6}')]}, "tool_calls")
    with RecordingServer(lambda request: reply) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        output = ask(model, "Add 5 and 6.", tools=[add()], tool_choice=choice, config=GenerateConfig(parallel_tool_calls=False))
    body = server.requests[0].json()
    assert body["tools"] == [ADD_TOOL] and body["tool_choice"] == sent and body["parallel_tool_calls"] is False
    assert output.message.tool_calls == [ToolCall("call_1", "add", {"x": 5, "y": 6})]
    assert output.stop_reason == "tool_calls" and output.completion == ""


def test_object_arguments_and_missing_ids_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [{"type": "function", "function": {"name": "add", "arguments": {"x": 1, "y": 2}}},
             {"type": "function", "function": {"name": "add", "arguments": "[1, 2]"}}]
    with RecordingServer(lambda request: completion({"content": "", "tool_calls": calls}, "stop")) as server:
        monkeypatch.setenv("OLLAMA_BASE_URL", f"{server.url}/v1")
        output = ask(evalkit.get_model("ollama/llama3.2"), "Add 1 and 2.", tools=[add()])
    first, second = output.message.tool_calls or []
    assert first == ToolCall("call_0", "add", {"x": 1, "y": 2})
    assert second.id == "call_1" and second.parse_error == "the arguments must be a JSON object, not list: [1, 2]"
    assert output.stop_reason == "tool_calls"  # the server said "stop", but the turn asks for tools


def test_no_tools_sends_no_tool_fields() -> None:
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1")
        output = generate_and_close(model, "ANSWER: plain", GenerateConfig(parallel_tool_calls=True))
    assert output.completion == "plain"
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(server.requests[0].json())


def test_the_completions_api_refuses_tools_with_one_line() -> None:
    model = evalkit.get_model("openai/gpt-3.5-turbo-instruct", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ToolsUnsupportedError, match="^provider 'openai' cannot call tools") as raised:
        ask(model, "Add 1 and 2.", tools=[add()])  # refused before any request
    assert "\n" not in str(raised.value)


def test_the_completions_api_drops_reasoning_and_structured_output_with_a_warning() -> None:
    config = GenerateConfig(reasoning_effort="low", response_schema=ResponseSchema("answer", {"type": "string"}))
    with RecordingServer(openai_reply) as server:
        model = evalkit.get_model("openai/davinci-002", base_url=f"{server.url}/v1")
        with pytest.warns(UserWarning, match="'openai' does not support reasoning_effort"), \
                pytest.warns(UserWarning, match="'openai' does not support response_schema"):
            output = generate_and_close(model, "ANSWER: plain", config)
    assert server.requests[0].json() == {"model": "davinci-002", "prompt": "ANSWER: plain"}
    assert output.completion == "plain"


def test_images_are_image_url_parts_with_files_read_into_data_uris(tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake-image-bytes")
    messages = [
        ChatMessageSystem("Describe images."),
        ChatMessageUser([ContentText("What is shown? ANSWER: two dots"), ContentImage(str(png), detail="low"),
                         ContentImage("https://example.com/cat.png"), ContentImage("data:image/jpeg;base64,AAAA", detail="high")]),
    ]
    with RecordingServer(chat_reply) as server:
        output = generate_and_close(evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1"), messages)
    assert server.requests[0].json()["messages"] == [
        {"role": "system", "content": "Describe images."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is shown? ANSWER: two dots"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "auto"}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "high"}},
        ]},
    ]
    assert output.completion == "two dots"


def test_an_image_to_the_completions_api_is_one_clear_line(tmp_path: Path) -> None:
    model = evalkit.get_model("openai/davinci-002", base_url="http://127.0.0.1:9/v1")
    image = ChatMessageUser([ContentText("What is this?"), ContentImage("https://example.com/cat.png")])
    with pytest.raises(ImagesUnsupportedError, match=r"^openai/davinci-002 \(completions API\) takes text only") as raised:
        generate_and_close(model, [image])
    assert "\n" not in str(raised.value)


def test_reasoning_effort_and_response_schema_are_sent_and_reasoning_tokens_read() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39, "completion_tokens_details": {"reasoning_tokens": 24}}
    reply = completion({"content": '{"city": "Tokyo"}'}, usage=usage)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    config = GenerateConfig(reasoning_effort="high", reasoning_tokens=2000,
                            response_schema=ResponseSchema("capital", schema, description="The capital.", strict=True))
    history = [
        ChatMessageUser("Capital of France?"),
        ChatMessageAssistant([ContentReasoning("France's capital is Paris.", signature="sig"), ContentText('{"city": "Paris"}')]),
        ChatMessageUser("And Japan?"),
    ]
    with RecordingServer(lambda request: reply) as server:
        model = evalkit.get_model("openai/o3-mini", base_url=f"{server.url}/v1")
        with pytest.warns(UserWarning, match="'openai' does not support reasoning_tokens"):
            output = generate_and_close(model, history, config)
    body = server.requests[0].json()
    assert body["reasoning_effort"] == "high" and "reasoning_tokens" not in json.dumps(body)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "capital", "schema": schema, "description": "The capital.", "strict": True}}
    assert body["messages"][1] == {"role": "assistant", "content": '{"city": "Paris"}'}  # reasoning is not sent back
    assert json.loads(output.completion) == {"city": "Tokyo"}
    assert output.usage == evalkit.ModelUsage(9, 30, 39, reasoning_tokens=24)


@pytest.mark.parametrize(
    ("model", "key_env", "url_env", "field"),
    [("deepseek/deepseek-reasoner", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "reasoning_content"),
     ("vllm-server/Qwen/QwQ-32B", "VLLM_API_KEY", "VLLM_BASE_URL", "reasoning")],
)
def test_reasoning_returned_by_compatible_servers_is_content_reasoning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str, key_env: str, url_env: str, field: str,
) -> None:
    monkeypatch.setenv(key_env, "key-0123456789")
    reply = completion({"content": "The answer is 42.", field: "Six times seven is 42."})
    task = Task(dataset=[Sample(input="What is 6 x 7?", target="42")], solver=generate(), scorer=includes())
    with RecordingServer(lambda request: reply) as server:
        monkeypatch.setenv(url_env, f"{server.url}/v1")
        [log] = evalkit.eval(task, model=model, log_dir=tmp_path / "logs", display="none", reasoning_effort="low")
    assert server.requests[0].json()["reasoning_effort"] == "low"
    [sample] = evalkit.read_eval_log(next((tmp_path / "logs").glob("*.jsonl"))).samples
    assert sample.chat_messages[-1] == ChatMessageAssistant([ContentReasoning("Six times seven is 42."), ContentText("The answer is 42.")])
    assert sample.output["completion"] == "The answer is 42." and log.footer["results"]["includes"]["accuracy"] == 1.0


def test_basic_agent_works_through_openai_until_submit(tmp_path: Path) -> None:
    def agent_model(request: Request) -> Reply:
        last = request.json()["messages"][-1]
        if last["role"] == "tool":
            return completion({"content": f"add gave {last['content']}."})  # no call: the agent asks it to go on
        if "ANSWER" in message_text(last):
            return completion({"tool_calls": [tool_call("call_add", "add", '{"x": 20, "y": 22}')]}, "tool_calls")
        return completion({"tool_calls": [tool_call("call_submit", "submit", '{"answer": "42"}')]}, "tool_calls")

    task = Task(dataset=[Sample(input="What is 20 + 22? ANSWER with submit().", target="42")],
                solver=basic_agent(tools=[add()]), scorer=includes())
    with RecordingServer(agent_model) as server:
        [log] = evalkit.eval(task, model="openai/gpt-4o", model_args={"base_url": f"{server.url}/v1"},
                             log_dir=tmp_path / "logs", display="none")
    bodies = [r.json() for r in server.requests]
    assert len(bodies) == 3
    assert all([t["function"]["name"] for t in b["tools"]] == ["add", "submit"] and b["tool_choice"] == "auto" for b in bodies)
    submit_params = bodies[0]["tools"][1]["function"]["parameters"]
    assert submit_params["properties"]["answer"]["type"] == "string" and submit_params["required"] == ["answer"]
    assert bodies[0]["messages"][0]["role"] == "system" and "submit()" in bodies[0]["messages"][0]["content"]
    assert bodies[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_add", "content": "42"}
    assert bodies[2]["messages"][-1]["role"] == "user" and "submit()" in bodies[2]["messages"][-1]["content"]
    [sample] = log.samples
    assert sample.output["completion"] == "42" and log.footer["results"]["includes"]["accuracy"] == 1.0
    assert sample.chat_messages[-1] == ChatMessageTool("42", tool_call_id="call_submit", function="submit")


PICTURE = f"data:image/png;base64,{base64.b64encode(b'fake-png').decode()}"


@tool
def picture() -> Any:
    async def execute() -> list[ContentText | ContentImage]:
        """Take a picture."""
        return [ContentText("a red dot"), ContentImage(PICTURE)]

    return execute


def test_images_in_tool_results_follow_the_tool_messages_in_a_user_message(tmp_path: Path) -> None:
    """Tool messages take text only (the server refuses image parts there, as the API does): the
    images of a turn's results go in one user message after its tool messages."""
    def look(request: Request) -> Reply:
        messages = request.json()["messages"]
        if messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], str):
            return completion({"tool_calls": [tool_call("call_p", "picture", "{}"), tool_call("call_a", "add", '{"x": 1, "y": 2}')]},
                              "tool_calls")
        images = [p for p in messages[-1]["content"] if p["type"] == "image_url"]
        return completion({"content": f"I see {len(images)} picture; the sum is 3."})

    task = Task(dataset=[Sample(input="Look and add.", target="3")], solver=[use_tools(picture(), add()), generate()],
                scorer=includes())
    with RecordingServer(checked(look)) as server:
        [log] = evalkit.eval(task, model="openai/gpt-4o", model_args={"base_url": f"{server.url}/v1"},
                             log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and len(server.requests) == 2
    assert server.requests[1].json()["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_p", "content": "a red dot"},
        {"role": "tool", "tool_call_id": "call_a", "content": "3"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PICTURE, "detail": "auto"}}]},
    ]
    [sample] = log.samples
    assert sample.output["completion"] == "I see 1 picture; the sum is 3."
    assert sample.chat_messages[2].content == [ContentText("a red dot"), ContentImage(PICTURE)]


def test_an_image_in_a_system_message_fails_in_one_line() -> None:
    system = ChatMessageSystem([ContentText("Look:"), ContentImage("https://example.com/cat.png")])
    with RecordingServer(chat_reply) as server:
        with pytest.raises(ImagesUnsupportedError, match="^a chat-completions system message takes text only, but a system "
                                                         "message holds an image; move the image to a user message$") as raised:
            generate_and_close(evalkit.get_model("openai/gpt-4o", base_url=f"{server.url}/v1"), [system, ChatMessageUser("Hi")])
    assert "\n" not in str(raised.value) and server.requests == []
