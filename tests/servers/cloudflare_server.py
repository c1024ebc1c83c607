"""Cloudflare Workers AI's REST API for RecordingServer handlers (`POST .../ai/run/<model>`).

The reply to a prompt containing `ANSWER: X` is `X`, in Cloudflare's envelope
`{"result": {"response", "usage"}, "success": true, "errors": [], "messages": []}`;
`envelope` builds scripted replies (tool calls, JSON mode) and `error_envelope` the API's errors.
"""

from __future__ import annotations

from typing import Any

from tests.servers.http import Reply, Request
from tests.servers.openai_server import answer


def envelope(response: Any = None, tool_calls: list[dict[str, Any]] | None = None, usage: dict[str, int] | None = None) -> Reply:
    """A successful run whose result holds `response`, `tool_calls` and `usage` (those given)."""
    result: dict[str, Any] = {"response": response}
    if tool_calls is not None:
        result["tool_calls"] = tool_calls
    if usage is not None:
        result["usage"] = usage
    return Reply(body={"result": result, "success": True, "errors": [], "messages": []})


def error_envelope(status: int, message: str, code: int = 10000, headers: dict[str, str] | None = None) -> Reply:
    """A failed run as the API answers it: `success: false` and the `errors` list."""
    body = {"result": None, "success": False, "errors": [{"code": code, "message": message}], "messages": []}
    return Reply(status=status, body=body, headers=headers or {})


def run_reply(request: Request) -> Reply:
    """A text-generation run answering the last user message."""
    messages = request.json()["messages"]
    prompt = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    text = answer(prompt)
    prompt_tokens, completion_tokens = len(prompt.split()), len(text.split())
    return envelope(text, usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens})
