"""Tool calls and reasoning read from local models' replies, in the formats chat templates
make models produce (Hermes/Qwen, Llama 3.x, Mistral, bare JSON)."""

from __future__ import annotations

import pytest

from evalkit.model.content import ContentReasoning, ContentText
from evalkit.providers.local.tool_parsing import parse_reply, parse_tool_calls, split_reasoning


def calls_of(text: str) -> list[tuple[str, dict, str | None]]:
    calls, _ = parse_tool_calls(text)
    return [(c.function, c.arguments, c.parse_error) for c in calls]


def test_hermes_qwen_tool_calls_several_and_the_text_around_them() -> None:
    reply = (
        "I will look both up.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Tokyo"}}\n</tool_call>'
    )
    calls, text = parse_tool_calls(reply)
    assert [(c.function, c.arguments, c.parse_error) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}, None),
        ("get_time", {"city": "Tokyo"}, None),
    ]
    assert text == "I will look both up."
    assert len({c.id for c in calls}) == 2 and all(len(c.id) == 9 and c.id.isalnum() for c in calls)  # Mistral's rule
    assert [c.id for c in parse_tool_calls(reply)[0]] == [c.id for c in calls]  # stable for the same reply
    assert parse_tool_calls(reply, turn=4)[0][0].id != calls[0].id  # a repeated call in a later turn


def test_ids_differ_between_replies() -> None:
    first, _ = parse_tool_calls('<tool_call>{"name": "add", "arguments": {"x": 1}}</tool_call>')
    second, _ = parse_tool_calls('<tool_call>{"name": "add", "arguments": {"x": 2}}</tool_call>')
    assert first[0].id != second[0].id


def test_hermes_arguments_given_as_a_json_string_and_an_unclosed_tag() -> None:
    assert calls_of('<tool_call>{"name": "add", "arguments": "{\\"x\\": 1, \\"y\\": 2}"}') == [
        ("add", {"x": 1, "y": 2}, None)
    ]


def test_malformed_json_in_a_hermes_wrapper_becomes_a_parse_error() -> None:
    calls, text = parse_tool_calls('Let me add.\n<tool_call>{"name": "add", "arguments": {"x": 1,</tool_call>')
    (call,) = calls
    assert call.function == "add" and call.arguments == {}
    assert call.parse_error is not None and "not valid JSON" in call.parse_error
    assert text == "Let me add."


def test_a_wrapper_holding_json_that_is_not_a_call_becomes_a_parse_error() -> None:
    ((name, arguments, error),) = calls_of('<tool_call>{"tool": "add"}</tool_call>')
    assert name == "" and arguments == {} and "name and arguments" in error


def test_llama3_json_with_parameters_after_the_python_tag() -> None:
    assert calls_of('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}') == [
        ("get_weather", {"city": "Paris"}, None)
    ]
    assert calls_of('{"name": "a", "parameters": {"q": 1}}; {"name": "b", "parameters": {}}') == [
        ("a", {"q": 1}, None), ("b", {}, None),
    ]


def test_llama3_malformed_json_after_the_python_tag_becomes_a_parse_error() -> None:
    ((name, _, error),) = calls_of('<|python_tag|>{"name": "get_weather", "parameters": {"city": Paris}}')
    assert name == "get_weather" and "not valid JSON" in error


def test_mistral_tool_calls_list() -> None:
    reply = '[TOOL_CALLS] [{"name": "add", "arguments": {"x": 1, "y": 2}}, {"name": "neg", "arguments": {"x": 3}}]'
    calls, text = parse_tool_calls(reply)
    assert [(c.function, c.arguments) for c in calls] == [("add", {"x": 1, "y": 2}), ("neg", {"x": 3})]
    assert text == ""
    ((_, _, error),) = calls_of('[TOOL_CALLS] [{"name": "add", "arguments": {"x": 1}')
    assert "not valid JSON" in error


def test_bare_json_objects_lists_and_code_fences() -> None:
    assert calls_of('{"name": "add", "arguments": {"x": 1}}') == [("add", {"x": 1}, None)]
    assert calls_of('[{"name": "add", "arguments": {"x": 1}}, {"name": "add", "arguments": {"x": 2}}]') == [
        ("add", {"x": 1}, None), ("add", {"x": 2}, None),
    ]
    assert calls_of('```json\n{"name": "add", "arguments": {"x": 1}}\n```') == [("add", {"x": 1}, None)]
    assert calls_of('{"type": "function", "function": {"name": "add", "arguments": "{\\"x\\": 1}"}}') == [
        ("add", {"x": 1}, None)
    ]
    calls, text = parse_tool_calls('{"name": "add", "arguments": {"x": 1}}\nThat adds one.')
    assert len(calls) == 1 and text == "That adds one."


@pytest.mark.parametrize(
    "reply",
    [
        "The answer is 7.",
        '{"answer": 7}',  # JSON, but not a call
        '{"name": "Ada"}',  # a name without arguments
        '{"name": "add", "arguments": {"x": 1',  # malformed, and no wrapper says it is a call
        'Call it like {"name": "add", "arguments": {}} next time.',  # not at the start
        '[{"name": "add", "arguments": {}}, {"note": 1}]',
    ],
)
def test_text_that_is_not_a_call_stays_text(reply: str) -> None:
    assert parse_tool_calls(reply) == ([], reply)


def test_reasoning_in_think_tags_becomes_content_reasoning() -> None:
    assert split_reasoning("<think>\n3 + 4 is 7.\n</think>\n\nThe answer is 7.") == ("3 + 4 is 7.", "The answer is 7.")
    assert split_reasoning("The template opened the block.</think>Seven.") == ("The template opened the block.", "Seven.")
    assert split_reasoning("No reasoning here.") == (None, "No reasoning here.")
    message = parse_reply("<think>Use the tool.</think>\n<tool_call>{\"name\": \"add\", \"arguments\": {}}</tool_call>", True)
    assert message.content == [ContentReasoning("Use the tool."), ContentText("")]
    assert message.tool_calls and message.tool_calls[0].function == "add"


def test_calls_are_read_only_when_tools_were_offered() -> None:
    reply = '<tool_call>{"name": "add", "arguments": {"x": 1}}</tool_call>'
    assert parse_reply(reply, False).tool_calls is None and parse_reply(reply, False).text == reply
    offered = parse_reply(reply, True)
    assert offered.tool_calls and offered.text == ""
