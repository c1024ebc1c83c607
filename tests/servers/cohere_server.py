"""Cohere v2 wire format for RecordingServer handlers: `/v2/chat` and `/v2/embed`.

`cohere_reply`: chat answers the last user message (`ANSWER: X` -> X, see openai_server.answer)
with finish_reason COMPLETE, MAX_TOKENS when `max_tokens` is below its word count, STOP_SEQUENCE
at a stop sequence; `logprobs` adds one entry per word. Embed gives each text the vector
`embedding(text)`. `scripted_turns` replies with the model's turns given in advance (tool
calls), picked by how many assistant messages the request already holds.

Both refuse, as the API does (HTTP 400), what `request_problem` finds.
"""

from __future__ import annotations

from typing import Any

from tests.servers.http import Handler, Reply, Request
from tests.servers.openai_server import answer


def embedding(text: str) -> list[float]:
    """The test vector for `text`: its length, word count and number of vowels."""
    return [float(len(text)), float(len(text.split())), float(sum(c in "aeiou" for c in text.lower()))]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in the API's shape `{"id": ..., "message": ...}`."""
    return Reply(status, {"id": "err-test", "message": message}, headers or {})


def request_problem(body: dict[str, Any]) -> str | None:
    """What the v2 API would refuse: an assistant message with neither content nor tool
    calls, a tool message not answering a call of the assistant message before the run of
    tool messages it belongs to, or a tool_choice other than REQUIRED or NONE."""
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        return f"invalid tool_choice: {body['tool_choice']}"
    asked: set[str] = set()
    for index, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        if role == "assistant":
            if not message.get("content") and not message.get("tool_calls"):
                return f"messages[{index}]: assistant message must have content or tool_calls"
            asked = {call["id"] for call in message.get("tool_calls") or []}
        elif role == "tool" and message.get("tool_call_id") not in asked:
            return f"messages[{index}]: tool message answers no tool call"
    return None


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else "\n".join(p.get("text", "") for p in content if p["type"] == "text")


def chat(body: dict[str, Any], message: dict[str, Any], finish_reason: str, words: int, logprobs: Any = None) -> Reply:
    """A v2 chat reply; tokens count the prompt's words plus 3 for the template, billed units without."""
    prompt = sum(len(message_text(m).split()) for m in body["messages"])
    usage = {"billed_units": {"input_tokens": prompt, "output_tokens": words},
             "tokens": {"input_tokens": prompt + 3, "output_tokens": words}}
    reply: dict[str, Any] = {"id": "chat-test", "finish_reason": finish_reason, "message": {"role": "assistant", **message},
                             "usage": usage}
    if logprobs is not None:
        reply["logprobs"] = logprobs
    return Reply(body=reply)


def chat_reply(request: Request) -> Reply:
    body = request.json()
    if problem := request_problem(body):
        return error(400, problem)
    prompt = next(message_text(m) for m in reversed(body["messages"]) if m["role"] == "user")
    text, finish = answer(prompt), "COMPLETE"
    for stop in body.get("stop_sequences") or ():
        if stop in text:
            text, finish = text[: text.index(stop)], "STOP_SEQUENCE"
    words = text.split()
    if body.get("max_tokens") is not None and len(words) > body["max_tokens"]:
        words = words[: body["max_tokens"]]
        text, finish = " ".join(words), "MAX_TOKENS"
    logprobs = [{"text": w, "token_ids": [i, i + 1], "logprobs": [-0.25, -0.5]} for i, w in enumerate(words)] \
        if body.get("logprobs") else None
    return chat(body, {"content": [{"type": "text", "text": text}]}, finish, len(words), logprobs)


def embed_reply(request: Request) -> Reply:
    body = request.json()
    if body.get("embedding_types") != ["float"] or not body.get("input_type"):
        return error(400, "embedding_types and input_type are required")
    texts = body["texts"]
    return Reply(body={"id": "embed-test", "response_type": "embeddings_by_type", "texts": texts,
                       "embeddings": {"float": [embedding(t) for t in texts]},
                       "meta": {"billed_units": {"input_tokens": sum(len(t.split()) for t in texts)}}})


def cohere_reply(request: Request) -> Reply:
    """Chat or embed, by path."""
    if request.path == "/v2/embed":
        return embed_reply(request)
    if request.path == "/v2/chat":
        return chat_reply(request)
    return error(404, f"no route {request.path}")


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of a reply's `message.tool_calls` (`arguments` is the JSON text, sent as is)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def scripted_turns(turns: list[dict[str, Any]]) -> Handler:
    """A handler replying with the message fields `turns[n]` (content, tool_plan, tool_calls)
    to a chat request holding n assistant messages; finish_reason TOOL_CALL when it calls tools."""

    def handle(request: Request) -> Reply:
        body = request.json()
        if problem := request_problem(body):
            return error(400, problem)
        done = sum(1 for m in body["messages"] if m["role"] == "assistant")
        turn = turns[min(done, len(turns) - 1)]
        return chat(body, turn, "TOOL_CALL" if turn.get("tool_calls") else "COMPLETE", 5)

    return handle
