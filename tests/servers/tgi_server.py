"""A Text Generation Inference / Text Embeddings Inference server for RecordingServer handlers.

`tgi_reply` serves, under any path prefix (a dedicated endpoint's root, or the router's
`/hf-inference/models/<id>`):
- `POST .../v1/chat/completions` as TGI answers it: the chat reply of openai_server.chat_reply
  with TGI's `system_fingerprint`, `logprobs` top alternatives, and finish_reason `eos_token`
  (older TGI's name for a natural stop);
- `POST /`, `/embed` and `.../pipeline/feature-extraction` as TEI answers embed requests
  (`{"inputs": [...]}` -> one vector per input, `embedding(text)` of cohere_server); with
  `per_token=True`, a vector per word, as a raw transformers feature-extraction pipeline gives.

`scripted_turns` replies with the assistant messages given in advance (tool calls with
arguments as a JSON object, as TGI sends them), by how many assistant messages the request holds.
"""

from __future__ import annotations

from typing import Any

from tests.servers.cohere_server import embedding
from tests.servers.http import Handler, Reply, Request
from tests.servers.openai_server import chat_reply


def _tgi_chat(request: Request) -> Reply:
    reply = chat_reply(request)
    body = reply.body
    body["system_fingerprint"] = "3.3.0-native"
    for choice in body["choices"]:
        if choice["finish_reason"] == "stop":
            choice["finish_reason"] = "eos_token"
    return reply


def _embed(request: Request, per_token: bool) -> Reply:
    inputs = request.json()["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not per_token:
        return Reply(body=[embedding(t) for t in texts])
    return Reply(body=[[embedding(word) for word in t.split()] for t in texts])


def tgi_handler(per_token: bool = False) -> Handler:
    """Chat completions and embeddings by path (see the module docstring)."""

    def handle(request: Request) -> Reply:
        if request.path.endswith("/v1/chat/completions"):
            return _tgi_chat(request)
        if request.path in ("/", "/embed") or request.path.endswith("/pipeline/feature-extraction"):
            return _embed(request, per_token)
        return Reply(404, {"error": f"no route {request.path}", "error_type": "not_found"})

    return handle


tgi_reply = tgi_handler()


def tgi_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in TGI's shape `{"error": ..., "error_type": ...}`."""
    return Reply(status, {"error": message, "error_type": "test_error"}, headers or {})


def scripted_turns(turns: list[dict[str, Any]]) -> Handler:
    """A handler replying with assistant message fields `turns[n]` (content, tool_calls) to a
    request holding n assistant messages; finish_reason tool_calls when it calls tools."""

    def handle(request: Request) -> Reply:
        body = request.json()
        done = sum(1 for m in body["messages"] if m["role"] == "assistant")
        turn = turns[min(done, len(turns) - 1)]
        return Reply(body={
            "object": "chat.completion", "id": "", "created": 1, "model": "tgi", "system_fingerprint": "3.3.0-native",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls" if turn.get("tool_calls") else "eos_token",
                         "message": {"role": "assistant", "content": None, **turn}}],
            "usage": {"prompt_tokens": 10 * len(body["messages"]), "completion_tokens": 5, "total_tokens": 10 * len(body["messages"]) + 5},
        })

    return handle


def tgi_tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """A tool call as TGI sends it: `arguments` a JSON object (or whatever is given), `description` null."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments, "description": None}}
