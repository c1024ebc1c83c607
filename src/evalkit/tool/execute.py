"""Runs the tool calls of one assistant turn and turns each result or failure into a
`ChatMessageTool` the model sees."""

from __future__ import annotations

from typing import Any

import anyio

from evalkit.model.content import Content, ContentImage, ContentText
from evalkit.model.types import ChatMessageTool
from evalkit.sample_limits import LimitExceededError
from evalkit.tool.definition import ToolDef, ToolError, ToolResult
from evalkit.tool.types import ToolCall, ToolCallError

DEFAULT_MAX_TOOL_OUTPUT = 16 * 1024
"""Bytes of a tool's text result shown to the model unless `max_tool_output` says otherwise."""


async def execute_tools(calls: list[ToolCall], tools: list[ToolDef], max_output: int | None = None) -> list[ChatMessageTool]:
    """Run `calls` (concurrently, unless one of their tools is not parallel) and return one
    message per call, in the calls' order."""
    by_name = {t.name: t for t in tools}
    results: list[ChatMessageTool | None] = [None] * len(calls)

    async def run(index: int) -> None:
        results[index] = await _execute(calls[index], by_name, max_output or DEFAULT_MAX_TOOL_OUTPUT)

    if len(calls) > 1 and all(by_name[c.function].parallel for c in calls if c.function in by_name):
        try:
            async with anyio.create_task_group() as group:
                for index in range(len(calls)):
                    group.start_soon(run, index)
        except* LimitExceededError as reached:
            raise reached.exceptions[0] from None  # the sample's limit, not wrapped in a group
    else:
        for index in range(len(calls)):
            await run(index)
    return [r for r in results if r is not None]


async def _execute(call: ToolCall, tools: dict[str, ToolDef], max_output: int) -> ChatMessageTool:
    def answer(content: str | list[Content], error: ToolCallError | None = None) -> ChatMessageTool:
        return ChatMessageTool(content=content, tool_call_id=call.id, function=call.function, error=error)

    definition = tools.get(call.function)
    if definition is None:
        known = ", ".join(sorted(tools)) or "none"
        return answer("", ToolCallError("parsing", f"there is no tool named {call.function!r} (tools: {known})"))
    if call.parse_error is not None:
        return answer("", ToolCallError("parsing", call.parse_error))
    problem = _argument_problem(call.arguments, definition.parameters)
    if problem is not None:
        return answer("", ToolCallError("parsing", f"{call.function}: {problem}"))
    try:
        result = await definition.execute(**call.arguments)
    except LimitExceededError:
        raise  # a model call inside the tool used up the sample's budget: the sample ends
    except ToolError as ex:
        return answer("", ToolCallError("unknown", ex.message))
    except TimeoutError as ex:
        return answer("", ToolCallError("timeout", str(ex) or "the tool timed out"))
    except Exception as ex:
        return answer("", ToolCallError(_error_type(ex), f"{type(ex).__name__}: {ex}"))
    return answer(_result_content(result, max_output))


def _argument_problem(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """What is wrong with the model's arguments for a tool: missing or unknown names."""
    properties = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in arguments]
    if missing:
        return f"missing required argument(s): {', '.join(missing)}"
    unknown = [name for name in arguments if name not in properties]
    if unknown and not schema.get("additionalProperties", False):
        return f"unexpected argument(s): {', '.join(unknown)} (takes: {', '.join(properties) or 'none'})"
    return None


def _error_type(error: Exception) -> Any:
    kinds = {UnicodeDecodeError: "unicode_decode", PermissionError: "permission",
             FileNotFoundError: "file_not_found", IsADirectoryError: "is_a_directory"}
    return next((kind for cls, kind in kinds.items() if isinstance(error, cls)), "unknown")


def _result_content(result: ToolResult, max_output: int) -> str | list[Content]:
    """A tool's return value as message content, text cut to `max_output` bytes."""
    if isinstance(result, (ContentText, ContentImage)):
        result = [result]
    if isinstance(result, list):
        return [ContentText(_truncate(p.text, max_output)) if isinstance(p, ContentText) else p for p in result]
    if isinstance(result, bool):
        return "true" if result else "false"
    return _truncate(str(result), max_output)


def _truncate(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    kept = data[:limit].decode(errors="ignore")
    return f"{kept}\n[output cut: {len(data):,} bytes, the first {limit:,} shown]"
