"""Anthropic Messages wire format for RecordingServer handlers (also behind Bedrock and Vertex).

The reply to a last user turn containing `ANSWER: X` is `X`, split over two text blocks; a
`max_tokens` below its word count stops with "max_tokens"; a stop sequence found in it stops
there with "stop_sequence".
"""

from __future__ import annotations

from tests.servers.http import Reply, Request
from tests.servers.openai_server import answer


def messages_reply(request: Request) -> Reply:
    """A Messages API reply answering the last user turn."""
    body = request.json()
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    text, stop_reason, stop_sequence = answer(prompt), "end_turn", None
    for stop in body.get("stop_sequences") or ():
        if stop in text:
            text, stop_reason, stop_sequence = text[: text.index(stop)], "stop_sequence", stop
    words = text.split()
    if len(words) > body["max_tokens"]:
        text, stop_reason = " ".join(words[: body["max_tokens"]]), "max_tokens"
    half = len(text) // 2
    return Reply(body={
        "id": "msg_test", "type": "message", "role": "assistant", "model": body.get("model", "vertex-or-bedrock"),
        "content": [{"type": "text", "text": text[:half]}, {"type": "text", "text": text[half:]}],
        "stop_reason": stop_reason, "stop_sequence": stop_sequence,
        "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(text.split()),
                  "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3},
    })
