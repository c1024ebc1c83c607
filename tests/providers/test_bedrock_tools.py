"""bedrock tools, images and reasoning: the real aioboto3 client talking Converse to a scripted
local server that checks requests the way Bedrock does (tests/servers/converse_server.py)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from evalkit import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    Sample,
    Task,
    eval,
    get_model,
    read_eval_log,
)
from evalkit.errors import ImagesUnsupportedError
from evalkit.model import api
from evalkit.model.content import ContentImage, ContentReasoning, ContentText
from evalkit.scorer import includes
from evalkit.solver import basic_agent, generate, use_tools
from evalkit.tool import ToolCall, ToolCallError, ToolError, ToolFunction, tool
from tests.tools import ADD_PARAMETERS, add
from tests.providers.helpers import generate_once, set_fake_aws_env
from tests.conftest import REPO, run_cli
from tests.servers.converse_server import ScriptedConverse, calculator_model, converse_blocks, converse_reply, tool_use
from tests.servers.http import RecordingServer

MODEL_ID = "anthropic.claude-3-7-sonnet-20250219-v1:0"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"




@tool
def lookup() -> Any:
    async def execute(key: str) -> str:
        """Look a key up.

        Args:
            key: Which key.
        """
        if key == "missing":
            raise ToolError("no value for 'missing'")
        return f"value of {key}"

    return execute


ADD_SPEC = {"toolSpec": {"name": "add", "description": "Add two whole numbers.", "inputSchema": {"json": ADD_PARAMETERS}}}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    set_fake_aws_env(monkeypatch, "us-east-1", unset=("BEDROCK_BASE_URL",))


def run_eval(server: RecordingServer, solver: Any, monkeypatch: pytest.MonkeyPatch, log_dir: Path,
             input: Any = "What is 1 + 2?", target: str = "3", **config: Any) -> Any:
    """One sample through eval() against `server`; the log read back."""
    monkeypatch.setenv("BEDROCK_BASE_URL", server.url)
    [log] = eval(Task(dataset=[Sample(input=input, target=target)], solver=solver, scorer=includes()),
                 model=f"bedrock/{MODEL_ID}", log_dir=log_dir, display="none", max_retries=0, **config)
    return read_eval_log(log.location)


def generate_with(server: RecordingServer, input: Any, **kwargs: Any) -> ModelOutput:
    """One `get_model(...).generate(input, tools=..., tool_choice=...)` against `server`."""
    model = get_model(f"bedrock/{MODEL_ID}", base_url=server.url)

    async def main() -> ModelOutput:
        try:
            return await model.generate(input, config=GenerateConfig(max_retries=0), **kwargs)
        finally:
            await model.aclose()

    return anyio.run(main)


def test_tool_loop_sends_specs_parallel_calls_and_results_and_the_log_keeps_them(
    monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    script = ScriptedConverse(
        converse_blocks([{"text": "Let me work it out."}, tool_use("tu_add", "add", {"x": 1, "y": 2}),
                         tool_use("tu_key", "lookup", {"key": "answer"}), tool_use("tu_bad", "lookup", {"key": "missing"})],
                        "tool_use"),
        converse_reply("The answer is 3.", usage=(40, 5, 45)),
    )
    with RecordingServer(script) as server:
        log = run_eval(server, [use_tools(add(), lookup()), generate()], monkeypatch, log_dir)
    first, second = (r.json() for r in server.requests)
    assert first["toolConfig"]["tools"][0] == ADD_SPEC
    assert first["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"]["json"]["required"] == ["key"]
    assert first["toolConfig"]["toolChoice"] == {"auto": {}} and second["toolConfig"] == first["toolConfig"]
    assert first["messages"] == [{"role": "user", "content": [{"text": "What is 1 + 2?"}]}]
    user, assistant, results = second["messages"]
    assert assistant == {"role": "assistant", "content": [
        {"text": "Let me work it out."}, tool_use("tu_add", "add", {"x": 1, "y": 2}),
        tool_use("tu_key", "lookup", {"key": "answer"}), tool_use("tu_bad", "lookup", {"key": "missing"})]}
    assert results == {"role": "user", "content": [  # the three results in ONE user turn
        {"toolResult": {"toolUseId": "tu_add", "content": [{"text": "3"}]}},
        {"toolResult": {"toolUseId": "tu_key", "content": [{"text": "value of answer"}]}},
        {"toolResult": {"toolUseId": "tu_bad", "content": [{"text": "no value for 'missing'"}], "status": "error"}},
    ]}
    sample = log.samples[0]
    messages = sample.chat_messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    calls = messages[1].tool_calls
    assert [(c.id, c.function, c.arguments) for c in calls] == [
        ("tu_add", "add", {"x": 1, "y": 2}), ("tu_key", "lookup", {"key": "answer"}), ("tu_bad", "lookup", {"key": "missing"})]
    assert messages[1].text == "Let me work it out."
    assert [(m.tool_call_id, m.function, m.text) for m in messages[2:4]] == [("tu_add", "add", "3"), ("tu_key", "lookup", "value of answer")]
    assert messages[4].error == ToolCallError("unknown", "no value for 'missing'")
    assert sample.output["completion"] == "The answer is 3." and sample.scores["includes"]["value"] == "C"
    assert log.footer["usage"][f"bedrock/{MODEL_ID}"]["total_tokens"] == 14 + 45


def test_cli_tool_use_task(tmp_path: Path) -> None:
    with RecordingServer(calculator_model) as server:
        result = run_cli("eval", str(REPO / "tasks" / "tool_use.py"), "--model", f"bedrock/{MODEL_ID}", "-T", "n=4",
                         "--log-dir", str(tmp_path / "logs"), env={"BEDROCK_BASE_URL": server.url})
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 8 and all(r.json()["toolConfig"]["tools"][0]["toolSpec"]["name"] == "calculator"
                                             for r in server.requests)
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.status == "success" and log.footer["results"]["match"]["accuracy"] == 1.0
    assert all([m.role for m in s.chat_messages] == ["system", "user", "assistant", "tool", "assistant"] for s in log.samples)


def test_malformed_tool_input_is_shown_to_the_model_as_an_error(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    script = ScriptedConverse(converse_blocks([tool_use("tu_1", "add", [1, 2])], "tool_use"), converse_reply("3"))
    with RecordingServer(script) as server:
        log = run_eval(server, [use_tools(add()), generate()], monkeypatch, log_dir)
    [result] = server.requests[1].json()["messages"][2]["content"]
    assert result["toolResult"]["status"] == "error" and "must be a JSON object" in result["toolResult"]["content"][0]["text"]
    assert log.samples[0].chat_messages[1].tool_calls[0].parse_error is not None and log.status == "success"


@pytest.mark.parametrize(("choice", "wire"), [("any", {"any": {}}), (ToolFunction("add"), {"tool": {"name": "add"}})])
def test_tool_choice(choice: Any, wire: dict[str, Any]) -> None:
    with RecordingServer(ScriptedConverse(converse_blocks([tool_use("tu_1", "add", {"x": 4})], "tool_use"))) as server:
        output = generate_with(server, "Add 4.", tools=[add()], tool_choice=choice)
    assert server.requests[0].json()["toolConfig"] == {"tools": [ADD_SPEC], "toolChoice": wire}
    assert output.stop_reason == "tool_calls" and output.message.tool_calls == [ToolCall("tu_1", "add", {"x": 4})]
    assert output.completion == ""


def test_a_forced_tool_in_eval_applies_to_the_first_call_only(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    script = ScriptedConverse(converse_blocks([tool_use("tu_1", "add", {"x": 1, "y": 2})], "tool_use"), converse_reply("3"))
    with RecordingServer(script) as server:
        run_eval(server, [use_tools(add(), tool_choice=ToolFunction("add")), generate()], monkeypatch, log_dir)
    assert [r.json()["toolConfig"]["toolChoice"] for r in server.requests] == [{"tool": {"name": "add"}}, {"auto": {}}]


HISTORY = [
    ChatMessageUser("What is 1 + 2?"),
    ChatMessageAssistant("", tool_calls=[ToolCall("tu_1", "add", {"x": 1, "y": 2}), ToolCall("tu_2", "add", {})]),
    ChatMessageTool("3", tool_call_id="tu_1", function="add"),
    ChatMessageTool("", tool_call_id="tu_2", function="add", error=ToolCallError("parsing", "bad input")),
]


@pytest.mark.parametrize("tools", [{"tools": [add()], "tool_choice": "none"}, {}])
def test_without_tools_offered_the_tool_history_goes_as_text(tools: dict[str, Any]) -> None:
    with RecordingServer(ScriptedConverse(converse_reply("It is 3."))) as server:
        output = generate_with(server, HISTORY, **tools)
    body = server.requests[0].json()
    assert "toolConfig" not in body and output.completion == "It is 3."  # the server refuses toolUse without toolConfig
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [{"text": 'called add with {"x": 1, "y": 2}'}, {"text": "called add with {}"}]},
        {"role": "user", "content": [{"text": "add result: 3"}, {"text": "add error: bad input"}]},
    ]


def test_with_tools_offered_the_same_history_goes_as_tool_blocks() -> None:
    unsigned = ChatMessageAssistant([ContentReasoning("another provider's thoughts"), ContentText("Adding.")],
                                    tool_calls=HISTORY[1].tool_calls)
    with RecordingServer(ScriptedConverse(converse_reply("It is 3."))) as server:
        generate_with(server, [HISTORY[0], unsigned, *HISTORY[2:], ChatMessageUser("Say it in words.")], tools=[add()])
    assert server.requests[0].json()["messages"][1:] == [
        {"role": "assistant", "content": [{"text": "Adding."}, tool_use("tu_1", "add", {"x": 1, "y": 2}), tool_use("tu_2", "add", {})]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "3"}]}},
            {"toolResult": {"toolUseId": "tu_2", "content": [{"text": "bad input"}], "status": "error"}},
            {"text": "Say it in words."}]},
    ]


def test_images_are_sent_as_bytes_in_messages_and_tool_results(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    jpeg = b"\xff\xd8\xff\xe0jpeg"
    data_uri = f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"
    history = [
        ChatMessageUser([ContentText("What is shown?"), ContentImage(str(path)), ContentImage(data_uri)]),
        ChatMessageAssistant("", tool_calls=[ToolCall("tu_1", "snapshot", {})]),
        ChatMessageTool([ContentText("here"), ContentImage(str(path))], tool_call_id="tu_1", function="snapshot"),
    ]
    with RecordingServer(ScriptedConverse(converse_reply("A dot."))) as server:
        output = generate_with(server, history, tools=[add()])
    user, _, result = server.requests[0].json()["messages"]
    png_block = {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}}
    assert user["content"] == [{"text": "What is shown?"}, png_block,
                               {"image": {"format": "jpeg", "source": {"bytes": base64.b64encode(jpeg).decode()}}}]
    assert result["content"] == [{"toolResult": {"toolUseId": "tu_1", "content": [{"text": "here"}, png_block]}}]
    assert output.completion == "A dot."


BMP = f"data:image/bmp;base64,{base64.b64encode(b'BM').decode()}"


@pytest.mark.parametrize(("messages", "error"), [
    ([ChatMessageUser([ContentText("Hi"), ContentImage(BMP)])], "takes png, jpeg, gif or webp images, not image/bmp"),
    ([ChatMessageSystem([ContentText("Look:"), ContentImage(BMP)]), ChatMessageUser("Hi")], "no images in system messages"),
])
def test_images_converse_cannot_take_fail_in_one_line(messages: list[Any], error: str) -> None:
    with RecordingServer(ScriptedConverse(converse_reply("never"))) as server:
        with pytest.raises(ImagesUnsupportedError, match=error) as raised:
            generate_once(f"bedrock/{MODEL_ID}", messages, base_url=server.url)
    assert "\n" not in str(raised.value) and server.requests == []


def test_images_in_a_dataset_reach_the_server(monkeypatch: pytest.MonkeyPatch, log_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    with RecordingServer(ScriptedConverse(converse_reply("a dot"))) as server:
        log = run_eval(server, generate(), monkeypatch, log_dir,
                       input=[ChatMessageUser([ContentText("What is shown?"), ContentImage(str(path))])], target="dot")
    [block] = [b for b in server.requests[0].json()["messages"][0]["content"] if "image" in b]
    assert base64.b64decode(block["image"]["source"]["bytes"]) == PNG
    assert log.samples[0].chat_messages[0].content[1] == ContentImage(str(path))


def test_reasoning_round_trip_through_the_tool_loop(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    redacted = base64.b64encode(b"\x00encrypted thinking").decode()
    thinking = [{"reasoningContent": {"reasoningText": {"text": "1 + 2: use the tool.", "signature": "sig-abc"}}},
                {"reasoningContent": {"redactedContent": redacted}}]
    script = ScriptedConverse(
        converse_blocks([*thinking, tool_use("tu_1", "add", {"x": 1, "y": 2})], "tool_use"),
        converse_blocks([{"reasoningContent": {"reasoningText": {"text": "It returned 3.", "signature": "sig-def"}}},
                         {"text": "3"}]),
    )
    with RecordingServer(script) as server, pytest.warns(UserWarning, match="temperature; it is dropped .not allowed with extended thinking"):
        log = run_eval(server, [use_tools(add()), generate()], monkeypatch, log_dir,
                       reasoning_tokens=2048, max_tokens=500, temperature=0.0)
    first, second = (r.json() for r in server.requests)
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert first["inferenceConfig"] == {"maxTokens": 2548}  # Claude counts thinking in maxTokens
    assert second["messages"][1]["content"] == [*thinking, tool_use("tu_1", "add", {"x": 1, "y": 2})]  # unchanged
    messages = log.samples[0].chat_messages
    assert messages[1].content == [ContentReasoning("1 + 2: use the tool.", signature="sig-abc"),
                                   ContentReasoning(redacted, redacted=True)]
    assert messages[3].content == [ContentReasoning("It returned 3.", signature="sig-def"), ContentText("3")]
    assert log.samples[0].output["completion"] == "3"


def test_basic_agent_submits_through_converse(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    script = ScriptedConverse(
        converse_blocks([tool_use("tu_1", "add", {"x": 1, "y": 2})], "tool_use"),
        converse_blocks([{"text": "Submitting."}, tool_use("tu_2", "submit", {"answer": "3"})], "tool_use"),
    )
    with RecordingServer(script) as server:
        log = run_eval(server, basic_agent(tools=[add()]), monkeypatch, log_dir)
    first = server.requests[0].json()
    assert [t["toolSpec"]["name"] for t in first["toolConfig"]["tools"]] == ["add", "submit"]
    assert first["system"][0]["text"] and len(server.requests) == 2
    assert log.samples[0].output["completion"] == "3" and log.samples[0].scores["includes"]["value"] == "C"


def test_empty_tool_output_and_an_empty_reply_go_as_placeholder_text(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    @tool
    def silent() -> Any:
        async def execute() -> str:
            """Do something quietly."""
            return ""

        return execute

    script = ScriptedConverse(
        converse_blocks([tool_use("tu_1", "silent", {})], "tool_use"),
        converse_reply(""),  # neither text nor a tool call: basic_agent asks it to go on
        converse_blocks([tool_use("tu_2", "submit", {"answer": "3"})], "tool_use"),
    )
    with RecordingServer(script) as server:  # the server refuses blank text, as Bedrock does
        log = run_eval(server, basic_agent(tools=[silent()]), monkeypatch, log_dir)
    last = server.requests[2].json()["messages"]
    assert last[2]["content"][0] == {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "(empty)"}]}}
    assert last[3] == {"role": "assistant", "content": [{"text": "(empty)"}]}
    assert log.samples[0].chat_messages[4].text == "" and log.samples[0].output["completion"] == "3"


def test_reasoning_effort_goes_to_nova_and_what_converse_lacks_warns() -> None:
    nova = "bedrock/us.amazon.nova-2-lite-v1:0"
    with RecordingServer(ScriptedConverse(*[converse_reply("ok")] * 3)) as server:
        with pytest.warns(UserWarning) as warned:
            generate_once(nova, "hi", GenerateConfig(max_retries=0, reasoning_effort="minimal", reasoning_tokens=100),
                          base_url=server.url)
            generate_once(f"bedrock/{MODEL_ID}", "hi", base_url=server.url, gen=GenerateConfig(
                max_retries=0, reasoning_effort="high", parallel_tool_calls=False,
                response_schema={"type": "object", "properties": {"answer": {"type": "string"}}}))
            generate_once(f"bedrock/{MODEL_ID}", "hi", GenerateConfig(max_retries=0, reasoning_tokens=1024, top_k=5),
                          base_url=server.url)
    nova_body, claude, thinking = (r.json() for r in server.requests)
    assert nova_body["additionalModelRequestFields"] == {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}
    assert "additionalModelRequestFields" not in claude
    assert thinking["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert thinking["inferenceConfig"] == {"maxTokens": 4096 + 1024}
    texts = {str(w.message) for w in warned}
    for field in ("reasoning_tokens", "reasoning_effort", "response_schema", "parallel_tool_calls", "top_k"):
        assert any(f"'bedrock' does not support {field}" in t for t in texts), texts


def test_a_model_that_calls_an_unknown_tool_sees_the_error(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    script = ScriptedConverse(converse_blocks([tool_use("tu_1", "multiply", {"x": 2})], "tool_use"), converse_reply("3"))
    with RecordingServer(script) as server:
        log = run_eval(server, [use_tools(add()), generate()], monkeypatch, log_dir)
    [block] = server.requests[1].json()["messages"][2]["content"]
    assert block["toolResult"]["status"] == "error" and "no tool named 'multiply'" in block["toolResult"]["content"][0]["text"]
    assert log.status == "success"


def test_the_server_refuses_tool_blocks_without_a_tool_config() -> None:
    """What the text-history tests lean on: the local server, like Bedrock, refuses toolUse
    and toolResult blocks in a request without toolConfig."""
    import boto3

    messages = [{"role": "user", "content": [{"text": "1 + 2?"}]},
                {"role": "assistant", "content": [tool_use("tu_1", "add", {"x": 1, "y": 2})]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "tu_1", "content": [{"text": "3"}]}}]}]
    with RecordingServer(ScriptedConverse(converse_reply("never"))) as server:
        client = boto3.client("bedrock-runtime", endpoint_url=server.url)
        with pytest.raises(ClientError, match="toolConfig field must be defined"):
            client.converse(modelId=MODEL_ID, messages=messages)


@pytest.mark.parametrize("choice", ["any", ToolFunction("add")])
def test_forced_tool_choice_with_thinking_sends_auto_and_warns(
    choice: Any, monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    """Claude refuses forced tool use with extended thinking (so does the local server): auto goes instead."""
    monkeypatch.setattr(api, "_warned", set())
    script = ScriptedConverse(converse_blocks([tool_use("tu_1", "add", {"x": 1, "y": 2})], "tool_use"), converse_reply("3"))
    with RecordingServer(script) as server, pytest.warns(
            UserWarning, match="'bedrock' does not support tool_choice; .*forced tool use is not allowed with extended thinking"):
        log = run_eval(server, [use_tools(add(), tool_choice=choice), generate()], monkeypatch, log_dir, reasoning_tokens=1024)
    first, second = (r.json() for r in server.requests)
    assert first["toolConfig"]["toolChoice"] == second["toolConfig"]["toolChoice"] == {"auto": {}}
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert log.status == "success" and log.samples[0].scores["includes"]["value"] == "C"


def test_the_server_refuses_thinking_with_a_forced_tool() -> None:
    """What the test above leans on: the local server, like Bedrock, refuses the combination."""
    import boto3

    with RecordingServer(ScriptedConverse(converse_reply("never"))) as server:
        client = boto3.client("bedrock-runtime", endpoint_url=server.url)
        with pytest.raises(ClientError, match="Thinking may not be enabled when tool_choice forces tool use"):
            client.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "1 + 2?"}]}],
                            toolConfig={"tools": [ADD_SPEC], "toolChoice": {"any": {}}},
                            additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}})
