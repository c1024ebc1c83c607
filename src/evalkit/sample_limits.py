"""Per-sample limits on messages and tokens: hitting one ends the sample's solvers, and the
sample is scored as it stands with the limit recorded in its log line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LimitType = Literal["message", "token"]


@dataclass(frozen=True)
class SampleLimits:
    """The limits every sample of a run starts with (solvers may change their own)."""

    messages: int | None = None
    tokens: int | None = None


class LimitExceededError(Exception):
    """A sample reached its `message_limit` or `token_limit`."""

    def __init__(self, type: LimitType, limit: int, value: int) -> None:
        super().__init__(f"{type} limit of {limit:,} reached ({value:,} {type}s)")
        self.type = type
        self.limit = limit
        self.value = value

    def to_dict(self) -> dict[str, object]:
        """The form kept in the sample's log line."""
        return {"type": self.type, "limit": self.limit}


def check_message_limit(count: int, limit: int | None) -> None:
    """Raise once the conversation has `limit` messages: another turn would pass it."""
    if limit is not None and count >= limit:
        raise LimitExceededError("message", limit, count)


def check_token_limit(used: int, limit: int | None) -> None:
    """Raise once the sample has used `limit` tokens (input and output, every call)."""
    if limit is not None and used >= limit:
        raise LimitExceededError("token", limit, used)
