"""Replies in the Gemini / Vertex AI generateContent wire format for RecordingServer."""

from __future__ import annotations

import threading
from typing import Any, Callable

from tests.servers.http import Reply, Request


def gemini_reply(*texts: str, finish_reason: str = "STOP", usage: tuple[int, int, int] = (9, 4, 13), **extra: Any) -> Reply:
    """A generateContent response with one candidate per text."""
    candidates = [
        {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason, "index": i}
        for i, text in enumerate(texts)
    ]
    return Reply(body={
        "candidates": candidates,
        "usageMetadata": {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1], "totalTokenCount": usage[2]},
        "modelVersion": "gemini-test-001",
        **extra,
    })


def google_error(code: int, status: str, message: str = "failed", headers: dict[str, str] | None = None) -> Reply:
    """A Google API error body."""
    return Reply(code, {"error": {"code": code, "message": message, "status": status}}, headers=headers or {})


def gemini_parts(*parts: dict[str, Any], finish_reason: str = "STOP", usage: tuple[int, int, int] = (9, 4, 13),
                 thoughts: int | None = None) -> Reply:
    """A generateContent response with one candidate made of `parts` (text, thought or
    functionCall part dicts); `thoughts` is usageMetadata.thoughtsTokenCount."""
    metadata: dict[str, Any] = {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1], "totalTokenCount": usage[2]}
    if thoughts is not None:
        metadata["thoughtsTokenCount"] = thoughts
    candidate = {"content": {"role": "model", "parts": list(parts)}, "finishReason": finish_reason, "index": 0}
    return Reply(body={"candidates": [candidate], "usageMetadata": metadata, "modelVersion": "gemini-test-001"})


def function_call(name: str, args: dict[str, Any], id: str | None = None, signature: str | None = None) -> dict[str, Any]:
    """A functionCall part (Gemini often gives no id; Gemini 3 signs the first call of a turn)."""
    call: dict[str, Any] = {"name": name, "args": args}
    if id is not None:
        call["id"] = id
    part: dict[str, Any] = {"functionCall": call}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def thought(text: str, signature: str | None = None) -> dict[str, Any]:
    """A thought-summary part."""
    part: dict[str, Any] = {"text": text, "thought": True}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def function_results(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The functionResponse parts of the request's last turn as the API reads them: (name,
    "output" or "error", value) from the response's "output" and "error" keys; a response
    with neither is the output as a whole."""
    results = []
    for part in body["contents"][-1]["parts"]:
        response = (part.get("functionResponse") or part.get("function_response") or {})
        if not response:
            continue
        value = response.get("response") or {}
        keys = [key for key in ("output", "error") if key in value]
        results += [(response["name"], key, value[key]) for key in keys] or [(response["name"], "output", value)]
    return results


Scripted = Reply | Callable[[dict[str, Any]], Reply]
"""A scripted reply, or a function of the request body giving it."""


def scripted(*replies: Scripted) -> Callable[[Request], Reply]:
    """A handler giving `replies` in order, then a 500 naming the extra request."""
    queue = list(replies)
    lock = threading.Lock()

    def handle(request: Request) -> Reply:
        with lock:
            reply = queue.pop(0) if queue else None
        if reply is None:
            return google_error(500, "INTERNAL", f"the script has no reply for request {request.path}")
        return reply(request.json()) if callable(reply) else reply

    return handle
