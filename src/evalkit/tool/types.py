"""What the model layer knows of tools: their definitions, the model's calls and the errors
it is shown. Plain data, shared by the providers and the tool loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

ToolCallErrorType = Literal["parsing", "timeout", "unicode_decode", "permission", "file_not_found",
                            "is_a_directory", "limit", "approval", "unknown"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for; `parse_error` is set when its arguments were not valid JSON."""

    id: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None
    type: Literal["function"] = "function"


@dataclass(frozen=True, slots=True)
class ToolCallError:
    """An error the model is shown in place of a tool's result."""

    type: ToolCallErrorType
    message: str


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A tool as a provider sends it: name, description and a JSON schema of its parameters
    (`{"type": "object", "properties": {...}, "required": [...]}`)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}, "required": []})


@dataclass(frozen=True, slots=True)
class ToolFunction:
    """A `tool_choice` that makes the model call this one tool."""

    name: str


ToolChoice = Union[Literal["auto", "any", "none"], ToolFunction]
"""auto: the model decides; any: it must call some tool; none: it must not call one."""


def tool_call_to_dict(call: ToolCall) -> dict[str, Any]:
    data: dict[str, Any] = {"id": call.id, "function": call.function, "arguments": call.arguments}
    if call.parse_error is not None:
        data["parse_error"] = call.parse_error
    return data


def tool_call_from_dict(data: dict[str, Any]) -> ToolCall:
    return ToolCall(id=str(data["id"]), function=str(data["function"]), arguments=dict(data.get("arguments") or {}),
                    parse_error=data.get("parse_error"))


def parse_tool_arguments(text: str | None) -> tuple[dict[str, Any], str | None]:
    """A tool call's arguments from the JSON text a provider returns: the dict, or `{}` and a
    parse error the model will be shown."""
    import json

    if not text or not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError as ex:
        return {}, f"the arguments are not valid JSON ({ex}): {text[:200]}"
    if not isinstance(value, dict):
        return {}, f"the arguments must be a JSON object, not {type(value).__name__}: {text[:200]}"
    return value, None
