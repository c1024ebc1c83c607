"""How one request is retried and timed: backoff, the request's time budget, clear final errors."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

from evalkit.errors import EvalkitError

DEFAULT_MAX_RETRIES = 5
DEFAULT_ATTEMPT_TIMEOUT = 600.0
"""Seconds one attempt may take when `attempt_timeout` is not set: the openai and anthropic
SDKs' own default and the longest non-streaming request their services answer, so no real
answer is cut short while a silent server still cannot hang an eval."""
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0


class RequestTimeoutError(TimeoutError):
    """An attempt took longer than `attempt_timeout`, or the request as a whole (attempts and
    waits between them) ran out of `timeout`."""


class ConnectionRefused(EvalkitError):
    """Nothing listens at the model's endpoint: the server is down or `base_url` is wrong."""


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's hint if it gave
    one, else exponential backoff with full jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, BACKOFF_CAP)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


class RequestClock:
    """The time one request has spent on attempts and on waits between them, against its
    `timeout` (None: no limit). Time queued for a connection or a rate-limit slot is not counted."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.spent = 0.0

    def left(self) -> float | None:
        """Seconds the request may still take (None: no limit)."""
        return None if self.timeout is None else max(self.timeout - self.spent, 0.0)

    def attempt_limit(self, attempt_timeout: float | None) -> tuple[float, bool]:
        """The seconds the next attempt may take, and whether that is all the request has left."""
        per_attempt = attempt_timeout or DEFAULT_ATTEMPT_TIMEOUT
        left = self.left()
        return (left, True) if left is not None and left <= per_attempt else (per_attempt, False)


def refused(error: BaseException, endpoint: str | None, label: str) -> ConnectionRefused | None:
    """A clear `ConnectionRefused` if a refused TCP connection caused `error` (SDKs report it
    as a connection error or even a timeout), else None."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            where = _origin(endpoint) if endpoint else f"{label}'s endpoint"
            return ConnectionRefused(f"connection refused to {where}: is the server running there? (check base_url)")
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _origin(url: str) -> str:
    """scheme://host:port of `url`, without any credentials or path."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
