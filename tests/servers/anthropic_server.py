"""Anthropic Messages wire format for RecordingServer handlers (also behind Bedrock and Vertex).

`messages_reply`: the reply to a last user turn containing `ANSWER: X` is `X`, split over two
text blocks; a `max_tokens` below its word count stops with "max_tokens"; a stop sequence
found in it stops there with "stop_sequence".

`scripted_turns`: the model's turns in a conversation given in advance (tool calls, thinking),
picked by how many assistant turns the request already holds, so concurrent samples each get
the whole script.

Both refuse, as the API does (HTTP 400, invalid_request_error), what `request_problem` finds.
"""

from __future__ import annotations

from typing import Any, Callable

from tests.servers.http import Handler, Reply, Request
from tests.servers.openai_server import answer

Blocks = list[dict[str, Any]]
Turn = Blocks | Callable[[dict[str, Any]], Blocks]
"""A scripted turn: its content blocks, or a function of the request body giving them."""


def turn_text(content: str | Blocks) -> str:
    """The text of a turn's content: the string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    return "\n".join(block["text"] for block in content if block.get("type") == "text")


def request_problem(body: dict[str, Any]) -> str | None:
    """What the Messages API would refuse in a request body (its error message), or None:
    thinking with a forced tool_choice, a message with empty content (but a final assistant
    one), blank text blocks (in tool results too), and a turn after tool_use blocks that does
    not begin with as many tool_result blocks."""
    if body.get("thinking") and (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    messages = body.get("messages") or []
    for index, message in enumerate(messages):
        content = message.get("content")
        final_assistant = index == len(messages) - 1 and message.get("role") == "assistant"
        if not final_assistant and (not content or (isinstance(content, str) and not content.strip())):
            return f"messages.{index}: all messages must have non-empty content except for the optional final assistant message"
        if any(not str(block.get("text")).strip() for block in _text_blocks(content)):
            return "messages: text content blocks must contain non-whitespace text"
        asked = sum(1 for block in content if block.get("type") == "tool_use") if isinstance(content, list) else 0
        following = messages[index + 1].get("content") if index + 1 < len(messages) else None
        if asked and following is not None:
            leading = following[:asked] if isinstance(following, list) else []
            if len(leading) < asked or any(block.get("type") != "tool_result" for block in leading):
                return (f"messages.{index + 1}: Did not find {asked} `tool_result` block(s) at the beginning of this message. "
                        "Messages following `tool_use` blocks must begin with a matching number of `tool_result` blocks.")
    return None


def _text_blocks(content: Any) -> Blocks:
    """The text blocks of a message's content, those inside tool_result blocks included."""
    if not isinstance(content, list):
        return []
    nested = [_text_blocks(block.get("content")) for block in content if block.get("type") == "tool_result"]
    return [block for block in content if block.get("type") == "text"] + [b for blocks in nested for b in blocks]


def refusal(problem: str) -> Reply:
    """The API's 400 for an invalid request."""
    return Reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": problem}})


def messages_reply(request: Request) -> Reply:
    """A Messages API reply answering the last user turn."""
    body = request.json()
    if problem := request_problem(body):
        return refusal(problem)
    prompt = next(turn_text(m["content"]) for m in reversed(body["messages"]) if m["role"] == "user")
    text, stop_reason, stop_sequence = answer(prompt), "end_turn", None
    for stop in body.get("stop_sequences") or ():
        if stop in text:
            text, stop_reason, stop_sequence = text[: text.index(stop)], "stop_sequence", stop
    words = text.split()
    if len(words) > body["max_tokens"]:
        words = words[: body["max_tokens"]]
        text, stop_reason = " ".join(words), "max_tokens"
    half = len(text) // 2
    blocks = [{"type": "text", "text": text[:half]}, {"type": "text", "text": text[half:]}]
    return _message(body, blocks, stop_reason, stop_sequence, usage=(len(prompt.split()), len(words)))


def scripted_turns(turns: list[Turn]) -> Handler:
    """A handler replying with `turns[n]` to a request whose conversation holds n assistant
    turns; stop_reason is "tool_use" when the turn has a tool_use block, else "end_turn"."""

    def handle(request: Request) -> Reply:
        body = request.json()
        if problem := request_problem(body):
            return refusal(problem)
        done = sum(1 for m in body["messages"] if m["role"] == "assistant")
        turn = turns[min(done, len(turns) - 1)]
        blocks = turn(body) if callable(turn) else turn
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        words = sum(len(str(b.get("text") or b.get("thinking") or b.get("input") or "").split()) for b in blocks)
        return _message(body, blocks, stop_reason, None, usage=(10 * len(body["messages"]), words))

    return handle


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": input}


def thinking(value: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": signature}


def redacted_thinking(data: str) -> dict[str, Any]:
    return {"type": "redacted_thinking", "data": data}


def tool_results(body: dict[str, Any]) -> Blocks:
    """The tool_result blocks of the request's last user turn."""
    content = body["messages"][-1]["content"]
    return [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]


def _message(body: dict[str, Any], blocks: Blocks, stop_reason: str, stop_sequence: str | None, *,
             usage: tuple[int, int]) -> Reply:
    input_tokens, output_tokens = usage
    return Reply(body={
        "id": "msg_test", "type": "message", "role": "assistant", "model": body.get("model", "vertex-or-bedrock"),
        "content": blocks, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3},
    })
