"""google and vertex: tools, images, thinking and structured output, end to end through eval()
and get_model() with the real google-genai client against a scripted local Gemini server."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import (
    ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser, ContentImage, ContentReasoning, ContentText, GenerateConfig,
    ResponseSchema, Sample, Task, eval, get_model, read_eval_log,
)
from evalkit.errors import ImagesUnsupportedError
from evalkit.scorer import includes
from evalkit.solver import basic_agent, generate, use_tools
from evalkit.tool import ToolCall, ToolCallError, ToolError, ToolFunction, tool
from tests.conftest import run_cli
from tests.providers.helpers import generate_and_close
from tests.servers.gemini_server import function_call, function_results, gemini_parts, gemini_reply, scripted, thought
from tests.servers.http import RecordingServer, Reply

MODEL = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


@pytest.fixture(autouse=True)
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-evalkit-test")
    for name in ("GEMINI_API_KEY", "GOOGLE_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


@tool
def add() -> Any:
    async def execute(a: int, b: int) -> int:
        """Add two whole numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    return execute


@tool
def weather() -> Any:
    async def execute(city: str) -> str:
        """Today's weather in a city.

        Args:
            city: The city's name.
        """
        if city == "Atlantis":
            raise ValueError("no weather station in Atlantis")
        if city == "Nowhere":
            raise ToolError("unknown city: Nowhere")
        return f"sunny in {city}"

    return execute


ADD_DECLARATION = {
    "name": "add",
    "description": "Add two whole numbers.",
    "parametersJsonSchema": {
        "type": "object",
        "properties": {"a": {"type": "integer", "description": "The first number."},
                       "b": {"type": "integer", "description": "The second number."}},
        "required": ["a", "b"],
    },
}


def camel_case(key: str) -> str:
    return re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)


def camel(data: Any) -> Any:
    """`data` with dict keys in camelCase, nested ones too: the SDK sends some fields in
    snake_case, which the API's protobuf JSON reads as well (use it where no key is the user's)."""
    if isinstance(data, list):
        return [camel(item) for item in data]
    if not isinstance(data, dict):
        return data
    return {camel_case(key): camel(value) for key, value in data.items()}


def declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's function declarations, their own field names (not the schemas') in camelCase."""
    [gemini_tool] = body["tools"]
    return [{camel_case(key): value for key, value in d.items()} for d in gemini_tool["functionDeclarations"]]


def run_eval(model: str, solver: list[Any], log_dir: Path, input: Any = "What is 1 + 2?", target: str = "3", **config: Any) -> Any:
    [log] = eval(Task(dataset=[Sample(input=input, target=target)], solver=solver, scorer=includes()), model=model,
                 log_dir=log_dir, display="none", max_retries=0, **config)
    return read_eval_log(log.location)


def test_tool_loop_sends_declarations_and_function_responses(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    def answer(body: dict[str, Any]) -> Reply:  # the model reads the result under "output"
        [(_, key, value)] = function_results(body)
        return gemini_reply(f"The answer is {value}." if key == "output" else "I could not add.")

    replies = scripted(gemini_parts(function_call("add", {"a": 1, "b": 2})), answer)
    with RecordingServer(replies) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        log = run_eval(f"google/{MODEL}", [use_tools(add()), generate()], log_dir)
    first, second = (r.json() for r in server.requests)
    assert declarations(first) == [ADD_DECLARATION]
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert second["contents"] == [
        {"role": "user", "parts": [{"text": "What is 1 + 2?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}}]},  # no id: Gemini gave none
        {"role": "user", "parts": [{"functionResponse": {"name": "add", "response": {"output": "3"}}}]},
    ]
    [sample] = log.samples
    assert sample.chat_messages == [
        ChatMessageUser("What is 1 + 2?"),
        ChatMessageAssistant("", tool_calls=[ToolCall("evalkit-call-0", "add", {"a": 1, "b": 2})]),
        ChatMessageTool("3", tool_call_id="evalkit-call-0", function="add"),
        ChatMessageAssistant("The answer is 3."),
    ]
    assert sample.scores["includes"]["value"] == "C" and log.footer["status"] == "success"


def test_parallel_calls_on_vertex_with_a_forced_function(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    calls = gemini_parts(function_call("weather", {"city": "Paris"}, id="g-1"), function_call("weather", {"city": "Oslo"}, id="g-2"))
    with RecordingServer(scripted(calls, gemini_reply("Sunny in both."))) as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        log = run_eval(f"vertex/{MODEL}", [use_tools(weather(), add(), tool_choice=ToolFunction("weather")), generate()], log_dir,
                       input="Weather in Paris and Oslo?", target="Sunny")
    first, second = server.requests
    assert first.path == second.path == f"/v1beta1/publishers/google/models/{MODEL}:generateContent"
    assert [d["name"] for d in declarations(first.json())] == ["weather", "add"]
    assert camel(first.json()["toolConfig"]) == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}
    assert second.json()["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}  # forced for the first call only
    model_turn, results = second.json()["contents"][1:]
    assert model_turn["parts"] == [{"functionCall": {"id": "g-1", "name": "weather", "args": {"city": "Paris"}}},
                                   {"functionCall": {"id": "g-2", "name": "weather", "args": {"city": "Oslo"}}}]
    assert results == {"role": "user", "parts": [  # both results in one user turn
        {"functionResponse": {"id": "g-1", "name": "weather", "response": {"output": "sunny in Paris"}}},
        {"functionResponse": {"id": "g-2", "name": "weather", "response": {"output": "sunny in Oslo"}}},
    ]}
    messages = log.samples[0].chat_messages
    assert [m.tool_call_id for m in messages if isinstance(m, ChatMessageTool)] == ["g-1", "g-2"]
    assert messages[1].tool_calls == [ToolCall("g-1", "weather", {"city": "Paris"}), ToolCall("g-2", "weather", {"city": "Oslo"})]
    assert log.samples[0].output["stop_reason"] == "stop" and log.footer["status"] == "success"


def test_tool_errors_reach_the_model_and_the_sample_goes_on(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    first_turn = gemini_parts(function_call("weather", {"city": "Atlantis"}), function_call("weather", {"city": "Nowhere"}),
                              function_call("forecast", {"city": "Oslo"}))
    def answer(body: dict[str, Any]) -> Reply:  # the model reads each failure under "error"
        errors = [key for _, key, _ in function_results(body)]
        return gemini_reply("I could not find out." if errors == ["error"] * 3 else "All went well.")

    with RecordingServer(scripted(first_turn, answer)) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        log = run_eval(f"google/{MODEL}", [use_tools(weather()), generate()], log_dir, input="Weather?", target="find")
    responses = [part["functionResponse"] for part in server.requests[1].json()["contents"][2]["parts"]]
    assert responses == [
        {"name": "weather", "response": {"error": "ValueError: no weather station in Atlantis"}},
        {"name": "weather", "response": {"error": "unknown city: Nowhere"}},
        {"name": "forecast", "response": {"error": "there is no tool named 'forecast' (tools: weather)"}},
    ]
    tool_messages = [m for m in log.samples[0].chat_messages if isinstance(m, ChatMessageTool)]
    assert [m.tool_call_id for m in tool_messages] == ["evalkit-call-0", "evalkit-call-1", "evalkit-call-2"]
    assert [m.error for m in tool_messages] == [ToolCallError("unknown", "ValueError: no weather station in Atlantis"),
                                                ToolCallError("unknown", "unknown city: Nowhere"),
                                                ToolCallError("parsing", "there is no tool named 'forecast' (tools: weather)")]
    assert log.footer["status"] == "success" and log.samples[0].scores["includes"]["value"] == "C"


def test_call_ids_stay_unique_across_turns(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    replies = scripted(gemini_parts(function_call("add", {"a": 1, "b": 2})), gemini_parts(function_call("add", {"a": 3, "b": 4})),
                       gemini_parts(function_call("submit", {"answer": "7"})))
    with RecordingServer(replies) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        log = run_eval(f"google/{MODEL}", [basic_agent(tools=[add()])], log_dir, input="1 + 2 + 4?", target="7")
    calls = [c for m in log.samples[0].chat_messages if isinstance(m, ChatMessageAssistant) for c in m.tool_calls or []]
    assert [(c.id, c.function) for c in calls] == [("evalkit-call-0", "add"), ("evalkit-call-1", "add"), ("evalkit-call-2", "submit")]
    assert len(server.requests) == 3 and log.samples[0].output["completion"] == "7"
    assert log.samples[0].scores["includes"]["value"] == "C"


async def now() -> str:
    """The time now."""
    return "noon"


def generate_with_tools(model: Any, messages: list[Any], tool_choice: Any) -> Any:
    """`model.generate(messages, tools=[now], tool_choice=...)` in a fresh event loop, closing the model after."""

    async def main() -> Any:
        try:
            return await model.generate(messages, tools=[now], tool_choice=tool_choice)
        finally:
            await model.aclose()

    return anyio.run(main)


def test_history_with_tool_calls_results_and_images(tmp_path: Path) -> None:
    picture = tmp_path / "chart.png"
    picture.write_bytes(PNG)
    messages = [
        ChatMessageUser("Plot it."),
        ChatMessageAssistant("Plotting.", tool_calls=[ToolCall("evalkit-call-0", "plot", {"n": 2}), ToolCall("g-7", "plot", {"n": 3})]),
        ChatMessageTool([ContentText("here"), ContentImage(str(picture))], tool_call_id="evalkit-call-0", function="plot"),
        ChatMessageTool("", tool_call_id="g-7", error=ToolCallError("timeout", "plot timed out")),  # named by its call
        ChatMessageUser("Describe it."),
    ]
    with RecordingServer(lambda r: gemini_reply("A chart.")) as server:
        model = get_model(f"google/{MODEL}", base_url=server.url)
        output = generate_with_tools(model, messages, tool_choice="none")
    body = server.requests[0].json()
    assert camel(body["contents"][1:]) == [
        {"role": "model", "parts": [{"text": "Plotting."}, {"functionCall": {"name": "plot", "args": {"n": 2}}},
                                    {"functionCall": {"id": "g-7", "name": "plot", "args": {"n": 3}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "plot", "response": {"output": "here"}}},
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
            {"functionResponse": {"id": "g-7", "name": "plot", "response": {"error": "plot timed out"}}},
        ]},
        {"role": "user", "parts": [{"text": "Describe it."}]},
    ]
    assert declarations(body) == [{"name": "now", "description": "The time now."}]  # it takes no parameters
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert output.completion == "A chart." and output.message.tool_calls is None


def test_images_from_a_file_a_url_and_a_data_uri(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg bytes")
    data_uri = f"data:image/gif;base64,{base64.b64encode(b'gif bytes').decode()}"
    with RecordingServer(lambda r: Reply(body=PNG, headers={"Content-Type": "image/png"})) as images, \
            RecordingServer(lambda r: gemini_reply("Three pictures.")) as server:
        content = [ContentText("What are these?"), ContentImage(str(photo)), ContentImage(f"{images.url}/cat.png"), ContentImage(data_uri)]
        output = generate_and_close(get_model(f"google/{MODEL}", base_url=server.url), [ChatMessageUser(content)])
    assert camel(server.requests[0].json()["contents"]) == [{"role": "user", "parts": [
        {"text": "What are these?"},
        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(b"jpeg bytes").decode()}},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
        {"inlineData": {"mimeType": "image/gif", "data": base64.b64encode(b"gif bytes").decode()}},
    ]}]
    assert images.requests[0].path == "/cat.png" and output.completion == "Three pictures."


def test_thinking_budget_thoughts_and_signatures_round_trip(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    signed = gemini_parts(thought("I should add them.", signature="c2lnLTE="), {"text": "Adding."},
                          function_call("add", {"a": 1, "b": 2}, signature="c2lnLTI="), thoughts=40, usage=(20, 10, 70))
    final = gemini_parts(thought("It is 3."), {"text": "The answer is "}, {"text": "3.", "thoughtSignature": "c2lnLTM="},
                         thoughts=10, usage=(60, 5, 75))
    with RecordingServer(scripted(signed, final)) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        log = run_eval(f"google/{MODEL}", [use_tools(add()), generate()], log_dir, reasoning_tokens=2048)
    first, second = (r.json() for r in server.requests)
    assert camel(first["generationConfig"]["thinkingConfig"]) == {"thinkingBudget": 2048, "includeThoughts": True}
    assert second["contents"][1] == {"role": "model", "parts": [
        {"text": "I should add them.", "thought": True, "thoughtSignature": "c2lnLTE="},
        {"text": "Adding."},
        {"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}, "thoughtSignature": "c2lnLTI="},
    ]}
    messages = log.samples[0].chat_messages
    assert messages[1].content == [ContentReasoning("I should add them.", "c2lnLTE="), ContentText("Adding."), ContentReasoning("", "c2lnLTI=")]
    assert messages[1].text == "Adding."
    assert messages[3].content == [ContentReasoning("It is 3."), ContentReasoning("", "c2lnLTM="), ContentText("The answer is 3.")]
    assert log.samples[0].output["completion"] == "The answer is 3."
    assert log.samples[0].usage == {"input_tokens": 80, "output_tokens": 65, "total_tokens": 145, "reasoning_tokens": 50}


@pytest.mark.parametrize(("signature", "sent"), [("c2lnLTM=", {"thoughtSignature": "c2lnLTM="}), ("not base64: another provider's", {})])
def test_answer_signature_goes_back_on_its_text_part(signature: str, sent: dict[str, str]) -> None:
    history = [ChatMessageUser("Hi"), ChatMessageAssistant([ContentReasoning("", signature), ContentText("Hello.")]), ChatMessageUser("Bye")]
    with RecordingServer(lambda r: gemini_reply("Bye.")) as server:
        generate_and_close(get_model(f"google/{MODEL}", base_url=server.url), history)
    assert server.requests[0].json()["contents"][1] == {"role": "model", "parts": [{"text": "Hello.", **sent}]}


@pytest.mark.parametrize(("model", "config", "expected"), [
    (GEMINI_3, GenerateConfig(reasoning_effort="low"), {"thinkingLevel": "LOW", "includeThoughts": True}),
    (GEMINI_3, GenerateConfig(reasoning_effort="high", reasoning_tokens=1000), {"thinkingBudget": 1000, "includeThoughts": True}),
    (MODEL, GenerateConfig(reasoning_effort="medium"), {"thinkingBudget": 8192, "includeThoughts": True}),
    ("gemini-2.5-pro", GenerateConfig(reasoning_effort="minimal"), {"thinkingBudget": 512, "includeThoughts": True}),
])
def test_reasoning_effort_as_level_or_budget(model: str, config: GenerateConfig, expected: dict[str, Any]) -> None:
    with RecordingServer(lambda r: gemini_reply("ok")) as server:
        output = generate_and_close(get_model(f"google/{model}", base_url=server.url), "Think.", config)
    assert camel(server.requests[0].json()["generationConfig"]["thinkingConfig"]) == expected
    assert output.completion == "ok" and output.usage is not None and output.usage.reasoning_tokens == 0


@pytest.mark.parametrize("provider", ["google", "vertex"])
def test_response_schema_is_structured_output(provider: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    config = GenerateConfig(response_schema=ResponseSchema(name="place", json_schema=schema))
    with RecordingServer(lambda r: gemini_reply('{"city": "Tokyo"}')) as server:
        output = generate_and_close(get_model(f"{provider}/{MODEL}", base_url=server.url), "Capital of Japan as JSON.", config)
    generation = server.requests[0].json()["generationConfig"]
    assert generation == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    assert output.completion == '{"city": "Tokyo"}'


def test_parallel_tool_calls_false_warns_once() -> None:
    with RecordingServer(lambda r: gemini_reply("ok")) as server:
        model = get_model(f"google/{MODEL}", base_url=server.url)
        with pytest.warns(UserWarning, match="provider 'google' does not support parallel_tool_calls"):
            output = generate_and_close(model, "hi", GenerateConfig(parallel_tool_calls=False))
    assert output.completion == "ok" and "tools" not in server.requests[0].json()


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"mode": "AUTO"}), ("any", {"mode": "ANY"}), ("none", {"mode": "NONE"}),
    (ToolFunction("now"), {"mode": "ANY", "allowedFunctionNames": ["now"]}),
])
def test_tool_choice_is_function_calling_mode(choice: Any, expected: dict[str, Any]) -> None:
    with RecordingServer(lambda r: gemini_parts(function_call("now", {}))) as server:
        output = generate_with_tools(get_model(f"google/{MODEL}", base_url=server.url), [ChatMessageUser("Time?")], choice)
    assert camel(server.requests[0].json()["toolConfig"]) == {"functionCallingConfig": expected}
    assert output.stop_reason == "tool_calls" and output.message.tool_calls == [ToolCall("evalkit-call-0", "now")]


CITY_TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import includes
from evalkit.solver import generate, use_tools
from evalkit.tool import tool

@tool
def population():
    async def execute(city: str) -> int:
        """How many people live in a city.

        Args:
            city: The city's name.
        """
        return {"Oslo": 717710}[city]
    return execute

@task
def cities():
    return Task(dataset=[Sample(input="How many people live in Oslo?", target="717710")],
                solver=[use_tools(population()), generate()], scorer=includes())
'''


def test_cli_eval_with_tools_and_reasoning_tokens(tmp_path: Path) -> None:
    (tmp_path / "cities.py").write_text(CITY_TASK, encoding="utf-8")
    replies = scripted(gemini_parts(function_call("population", {"city": "Oslo"})), gemini_reply("717710 people."))
    with RecordingServer(replies) as server:
        result = run_cli("eval", str(tmp_path / "cities.py"), "--model", f"google/{MODEL}", "--reasoning-tokens", "1024",
                         "--log-dir", str(tmp_path / "logs"), env={"GOOGLE_BASE_URL": server.url})
    assert result.returncode == 0, result.stderr
    first, second = (r.json() for r in server.requests)
    assert [d["name"] for d in declarations(first)] == ["population"]
    assert camel(first["generationConfig"]["thinkingConfig"]) == {"thinkingBudget": 1024, "includeThoughts": True}
    assert second["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "population", "response": {"output": "717710"}}}]}
    [path] = (tmp_path / "logs").glob("*.jsonl")
    sample = read_eval_log(path).samples[0]
    assert [m.role for m in sample.chat_messages] == ["user", "assistant", "tool", "assistant"]
    assert sample.scores["includes"]["value"] == "C"


@pytest.mark.parametrize("provider", ["google", "vertex"])
def test_an_image_in_a_system_message_fails_in_one_line(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    system = ChatMessageSystem([ContentText("Look:"), ContentImage("https://example.com/cat.png")])
    with RecordingServer(lambda r: gemini_reply("never")) as server:
        model = get_model(f"{provider}/{MODEL}", base_url=server.url)
        with pytest.raises(ImagesUnsupportedError, match=f"^provider '{provider}' takes no images in system messages "
                                                         r"\(systemInstruction is text only\)") as raised:
            generate_with_tools(model, [system, ChatMessageUser("Hi")], tool_choice="auto")
    assert "\n" not in str(raised.value) and server.requests == []
