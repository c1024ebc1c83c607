"""Replies in the AWS JSON wire format (Bedrock Converse, SageMaker runtime) for RecordingServer,
and a scripted Converse endpoint that checks requests the way Bedrock does."""

from __future__ import annotations

import re
import threading
from typing import Any

from tests.servers.http import Reply, Request


def converse_reply(text: str, stop_reason: str = "end_turn", usage: tuple[int, int, int] = (11, 3, 14)) -> Reply:
    """A Converse response with one text block."""
    return converse_blocks([{"text": text}], stop_reason, usage)


def converse_blocks(content: list[dict[str, Any]], stop_reason: str = "end_turn", usage: tuple[int, int, int] = (11, 3, 14)) -> Reply:
    """A Converse response with these content blocks (text, toolUse, reasoningContent)."""
    return Reply(body={
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": usage[2]},
        "metrics": {"latencyMs": 12},
    })


def tool_use(tool_use_id: str, name: str, input: Any) -> dict[str, Any]:
    """A `toolUse` content block."""
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": input}}


def aws_error(status: int, code: str, message: str = "failed", headers: dict[str, str] | None = None, **fields: Any) -> Reply:
    """An AWS JSON-protocol error, typed by the x-amzn-ErrorType header as botocore reads it."""
    return Reply(status, {"message": message, **fields}, headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/", **(headers or {})})


def converse_problem(body: dict[str, Any]) -> str | None:
    """What Bedrock would refuse in a Converse request body (a ValidationException), or None:
    Claude's thinking with a forced toolChoice, turns that do not alternate from user, blank text (in tool results too), toolUse/toolResult blocks without a
    toolConfig, and tool calls not answered by toolResults in the next user turn."""
    forced = set((body.get("toolConfig") or {}).get("toolChoice") or {}) & {"any", "tool"}
    if forced and (body.get("additionalModelRequestFields") or {}).get("thinking"):
        return "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use."
    messages = body.get("messages") or []
    tool_blocks = False
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            return f"A conversation must alternate between user and assistant roles (messages.{index} is {message.get('role')!r})"
        for position, block in enumerate(message.get("content") or []):
            nested = block["toolResult"]["content"] if "toolResult" in block else [block]
            if any("text" in each and not each["text"].strip() for each in nested):
                return f"The text field in the ContentBlock object at messages.{index}.content.{position} is blank."
            tool_blocks = tool_blocks or "toolUse" in block or "toolResult" in block
        asked = [b["toolUse"]["toolUseId"] for b in message.get("content") or [] if "toolUse" in b]
        if asked:
            following = messages[index + 1]["content"] if index + 1 < len(messages) else []
            answered = [b["toolResult"]["toolUseId"] for b in following if "toolResult" in b]
            if sorted(answered) != sorted(asked):
                return f"Expected toolResult blocks at messages.{index + 1}.content for the ids {asked} (got {answered})"
    if tool_blocks and not (body.get("toolConfig") or {}).get("tools"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    return None


class ScriptedConverse:
    """A RecordingServer handler for `POST /model/{id}/converse`: checks each request with
    `converse_problem` (answering a ValidationException) and answers the scripted replies in turn."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.endswith("/converse"):
            return aws_error(404, "UnknownOperationException", f"no route for {request.method} {request.path}")
        problem = converse_problem(request.json() or {})
        if problem is not None:
            return aws_error(400, "ValidationException", problem)
        with self._lock:
            if not self.replies:
                return aws_error(500, "InternalServerException", "the script has no reply left")
            return self.replies.pop(0)


QUESTION = re.compile(r"What is (?P<expression>.+)\?")


def calculator_model(request: Request) -> Reply:
    """A stateless Converse "model" for tasks/tool_use.py: asked "What is A op B?" it calls the
    `calculator` tool with "A op B"; shown the tool's result, it answers with it."""
    body = request.json() or {}
    problem = converse_problem(body)
    if problem is not None:
        return aws_error(400, "ValidationException", problem)
    last = body["messages"][-1]["content"]
    results = [block["toolResult"] for block in last if "toolResult" in block]
    if results:
        return converse_reply(results[-1]["content"][0]["text"])
    question = QUESTION.search(" ".join(block.get("text", "") for block in last))
    if question is None:
        return converse_reply("I only do arithmetic.")
    return converse_blocks([tool_use(f"tu_{len(body['messages'])}", "calculator", {"expression": question["expression"]})], "tool_use")
