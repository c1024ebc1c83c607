"""Replies in the AWS JSON wire format (Bedrock Converse, SageMaker runtime) for RecordingServer."""

from __future__ import annotations

from typing import Any

from tests.servers.http import Reply


def converse_reply(text: str, stop_reason: str = "end_turn", usage: tuple[int, int, int] = (11, 3, 14)) -> Reply:
    """A Converse response with one text block."""
    return Reply(body={
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": usage[2]},
        "metrics": {"latencyMs": 12},
    })


def aws_error(status: int, code: str, message: str = "failed", headers: dict[str, str] | None = None, **fields: Any) -> Reply:
    """An AWS JSON-protocol error, typed by the x-amzn-ErrorType header as botocore reads it."""
    return Reply(status, {"message": message, **fields}, headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/", **(headers or {})})
