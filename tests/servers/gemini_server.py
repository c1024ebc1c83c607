"""Replies in the Gemini / Vertex AI generateContent wire format for RecordingServer."""

from __future__ import annotations

from typing import Any

from tests.servers.http import Reply


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
