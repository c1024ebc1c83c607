"""A local model's reply as an assistant message: its tool calls and its reasoning, parsed
from the text formats chat templates teach models.

Tool calls (read only when tools were offered):
- Hermes / Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one or more;
- Llama 3.x: `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>`, several
  separated by `;`;
- Mistral: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]`;
- a reply that starts with a bare JSON object (or list of them) holding a name and arguments.

Malformed JSON inside a recognised wrapper (`<tool_call>`, `<|python_tag|>`, `[TOOL_CALLS]`)
becomes a call with `parse_error` (the model is shown the error); without a wrapper, text that
is not a well-formed call stays text. Reasoning: a leading `<think>...</think>` (or text up to
`</think>`, when the template opened the block) becomes `ContentReasoning`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from evalkit.model.content import Content, ContentReasoning, ContentText
from evalkit.model.types import ChatMessageAssistant
from evalkit.tool.types import ToolCall, parse_tool_arguments

TOOL_MARKERS = ("<|python_tag|>", "[TOOL_CALLS]")
"""Special tokens that open a tool call (kept when a reply is decoded)."""

_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')
_SEPARATORS = re.compile(r"[\s;,]*")
_THINK = re.compile(r"^\s*(?:<think>)?(.*?)</think>\s*", re.DOTALL)

_Found = tuple[str, dict[str, Any], "str | None"]
"""A call before it gets its id: (function, arguments, parse error)."""


def parse_reply(text: str, tools_offered: bool, turn: int = 0) -> ChatMessageAssistant:
    """The assistant message for a model's raw `text`: reasoning split off, and, when tools
    were offered, the tool calls taken out of the text (`turn`, the conversation's length,
    keeps a repeated call's id distinct from the earlier one)."""
    reasoning, text = split_reasoning(text)
    calls, text = parse_tool_calls(text, turn) if tools_offered else ([], text)
    content: str | list[Content] = [ContentReasoning(reasoning), ContentText(text)] if reasoning is not None else text
    return ChatMessageAssistant(content=content, tool_calls=calls or None)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(the reasoning of a leading `<think>` block or None, the rest of the text)."""
    found = _THINK.match(text) if "</think>" in text else None
    if found is None:
        return None, text
    return found.group(1).strip(), text[found.end() :]


def parse_tool_calls(text: str, turn: int = 0) -> tuple[list[ToolCall], str]:
    """The tool calls in a model's reply and the text left. Ids are 9 letters and digits (what
    Mistral's templates demand), the same for the same reply at the same turn."""
    if "<tool_call>" in text:
        found = [call for body in _HERMES.findall(text) for call in _wrapped(body)]
        rest = _HERMES.sub("", text)
    elif marker := next((m for m in TOOL_MARKERS if m in text), None):
        before, _, payload = text.partition(marker)
        found = _wrapped(payload)
        rest = before
    else:
        found, rest = _bare(text)
    calls = [ToolCall(_call_id(text, turn, index), name, args, error) for index, (name, args, error) in enumerate(found)]
    return calls, rest.strip() if calls else text


def _call_id(text: str, turn: int, index: int) -> str:
    return hashlib.sha256(f"{turn}\n{index}\n{text}".encode()).hexdigest()[:9]


def _wrapped(body: str) -> list[_Found]:
    """The calls in a wrapper's JSON: well-formed ones, or one call with a parse error."""
    body = _unfenced(body.strip())
    values, end = _decode_all(body)
    whole = bool(values) and not body[end:].strip(" \n;,")
    if whole and all(_is_call(v) for v in values):
        return [_found(v) for v in values]
    if whole:
        return [("", {}, f"a tool call must be a JSON object with a name and arguments: {body[:200]}")]
    try:
        json.loads(body)
        error = "not a JSON object"
    except ValueError as ex:
        error = str(ex)
    name = _NAME.search(body)
    return [(name.group(1) if name else "", {}, f"the tool call is not valid JSON ({error}): {body[:200]}")]


def _bare(text: str) -> tuple[list[_Found], str]:
    """Calls as JSON at the start of the reply (code fences allowed), and the text after them."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    body = fenced.group(1) if fenced else stripped
    values, end = _decode_all(body)
    calls = []
    for value in values:
        if not _is_call(value):
            break
        calls.append(_found(value))
    if not calls or len(calls) < len(values):
        return [], text
    return calls, "" if fenced else body[end:]


def _decode_all(body: str) -> tuple[list[Any], int]:
    """The JSON values at the start of `body` (separated by whitespace, `;` or `,`; lists
    flattened) and where the last one ended (0: none)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = end = 0
    while position < len(body) and body[position] in "{[":
        try:
            value, end = decoder.raw_decode(body, position)
        except ValueError:
            break
        values.extend(value if isinstance(value, list) else [value])
        position = _SEPARATORS.match(body, end).end()  # type: ignore[union-attr]
    return values, end


def _unfenced(body: str) -> str:
    fenced = _FENCE.match(body)
    return fenced.group(1) if fenced else body


def _is_call(value: Any) -> bool:
    call = _function(value)
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return False
    return "arguments" in call or "parameters" in call


def _function(value: Any) -> Any:
    """The call itself: OpenAI-style `{"type": "function", "function": {...}}` unwrapped."""
    return value["function"] if isinstance(value, dict) and isinstance(value.get("function"), dict) else value


def _found(value: Any) -> _Found:
    call = _function(value)
    arguments = call.get("arguments", call.get("parameters"))
    if isinstance(arguments, str):
        parsed, error = parse_tool_arguments(arguments)
        return call["name"], parsed, error
    if isinstance(arguments, dict):
        return call["name"], arguments, None
    if arguments is None:
        return call["name"], {}, None
    return call["name"], {}, f"the arguments must be a JSON object, not {type(arguments).__name__}"
