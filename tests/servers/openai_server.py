"""OpenAI wire format for RecordingServer handlers: chat completions and legacy completions.

The reply to a prompt containing `ANSWER: X` is `X`; `max_tokens` (or `max_completion_tokens`)
of 1 stops with "length"; `n` gives that many choices; `logprobs` adds token log probabilities.
`completion` and `tool_call` build scripted replies (tool calls, reasoning) for tool tests;
`checked` puts a handler behind the API's checks on tool messages and image parts.
"""

from __future__ import annotations

import re
from typing import Any

from tests.servers.http import Handler, Reply, Request

_ANSWER = re.compile(r"ANSWER:\s*([^\n]*)")


def answer(prompt: str) -> str:
    """The scripted reply to `prompt`."""
    found = _ANSWER.search(prompt)
    return found.group(1).strip() if found else "Default reply"


def _finish(body: dict[str, Any], text: str) -> tuple[str, str]:
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    words = text.split()
    if limit is not None and len(words) > limit:
        return " ".join(words[:limit]), "length"
    return text, "stop"


def _usage(prompt: str, text: str, n: int) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(prompt.split()), len(text.split()) * n
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


def message_text(message: dict[str, Any]) -> str:
    """A request message's text: its content string, or its text parts joined."""
    content = message["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")


def chat_reply(request: Request) -> Reply:
    """A chat completion answering the last user message."""
    body = request.json()
    prompt = next(message_text(m) for m in reversed(body["messages"]) if m["role"] == "user")
    text, finish = _finish(body, answer(prompt))
    n = body.get("n") or 1
    logprobs = None
    if body.get("logprobs"):
        tops = body.get("top_logprobs") or 0
        logprobs = {"content": [
            {"token": word, "logprob": -0.5, "top_logprobs": [{"token": f"{word}{k}", "logprob": -1.0 - k} for k in range(tops)]}
            for word in text.split()
        ]}
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "logprobs": logprobs, "finish_reason": finish}
        for i in range(n)
    ]
    return Reply(body={
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": f"{body['model']}-served",
        "choices": choices, "usage": _usage(prompt, text, n),
    })


def completion_reply(request: Request) -> Reply:
    """A legacy completion answering the prompt."""
    body = request.json()
    prompt = body["prompt"]
    text, finish = _finish(body, answer(prompt))
    logprobs = None
    if body.get("logprobs") is not None:
        tokens = text.split()
        logprobs = {
            "tokens": tokens,
            "token_logprobs": [-0.25] * len(tokens),
            "top_logprobs": [{t: -0.25, f"{t}?": -2.0} for t in tokens],
            "text_offset": list(range(len(tokens))),
        }
    return Reply(body={
        "id": "cmpl-test", "object": "text_completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}],
        "usage": _usage(prompt, text, 1),
    })


def openai_reply(request: Request) -> Reply:
    """Chat or legacy completions, by path."""
    return chat_reply(request) if "/chat/completions" in request.path else completion_reply(request)


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of a reply's `message.tool_calls` (`arguments` is the JSON text, sent as is)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(message: dict[str, Any], finish_reason: str = "stop", usage: dict[str, Any] | None = None) -> Reply:
    """A chat completion whose one choice holds the assistant `message` fields
    (content, tool_calls, reasoning_content, ...)."""
    return Reply(body={
        "id": "chatcmpl-script", "object": "chat.completion", "created": 1, "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, **message}, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in the OpenAI/Anthropic shape `{"error": {"message": ...}}`."""
    return Reply(status=status, body={"error": {"message": message, "type": "test_error"}}, headers=headers or {})


def scripted(first: list[Reply], then: Handler) -> Handler:
    """A handler giving the `first` replies in order, then `then` for every request."""
    queue = list(first)

    def handle(request: Request) -> Reply:
        return queue.pop(0) if queue else then(request)

    return handle


def chat_problem(body: dict[str, Any]) -> str | None:
    """What the chat-completions API would refuse in a request's messages (its error message),
    or None: an image part outside a user message, and tool calls not answered by the tool
    messages right after them."""
    messages = body.get("messages") or []
    for index, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "user" and isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return f"Invalid 'messages[{index}]'. Image URLs are only allowed for messages with role 'user', but this message " \
                   f"with role '{message.get('role')}' contains an image URL."
        asked = [call["id"] for call in message.get("tool_calls") or []]
        following = messages[index + 1:index + 1 + len(asked)]
        answered = [m.get("tool_call_id") for m in following if m.get("role") == "tool"]
        if sorted(answered) != sorted(asked):
            missing = ", ".join(sorted(set(asked) - set(answered)))
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id'. The following tool_call_ids did not have response messages: {missing}")
    return None


def checked(handler: Handler) -> Handler:
    """`handler` behind the API's request checks: a 400 invalid_request_error for what `chat_problem` finds."""

    def handle(request: Request) -> Reply:
        problem = chat_problem(request.json() or {})
        if problem is not None:
            return Reply(400, {"error": {"message": problem, "type": "invalid_request_error", "param": "messages", "code": None}})
        return handler(request)

    return handle
