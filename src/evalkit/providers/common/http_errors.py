"""What HTTP providers share about errors: retry hints, which statuses are transient, and
clear errors for missing credentials and rejected requests.

The helpers are SDK-agnostic: SDK errors are read through the `status_code`,
`response.headers` and `body` attributes that the openai and anthropic SDKs' exceptions (and
most others) carry, and the rest take a status, headers or a decoded body.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from evalkit.errors import EvalkitError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
"""4xx statuses worth retrying (timeouts, conflicts, rate limits); every 5xx is retried too."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class MissingCredentialsError(EvalkitError):
    """A provider's API key (or other required setting) is not set."""

    def __init__(self, provider: str, *names: str) -> None:
        super().__init__(f"provider '{provider}' needs {' or '.join(names)}: set it in the environment or in .env")


class ProviderRequestError(EvalkitError):
    """The server refused the request in a way a retry cannot fix (400, 401, 403, 404, 413, 422)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MalformedResponseError(RuntimeError):
    """The server answered 2xx with a body that is not the JSON the API promises."""


def is_retryable_status(status: int | None) -> bool:
    """Whether an HTTP `status` is transient: 408, 409, 425, 429 or any 5xx."""
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def parse_reset(value: str | None) -> float | None:
    """Seconds until a rate-limit reset header's moment: a duration such as `1s`, `6m0s` or
    `250ms` (OpenAI's x-ratelimit-reset-*) or an RFC 3339 time (Anthropic's *-reset)."""
    if not value:
        return None
    value = value.strip()
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def retry_after_from_headers(headers: Mapping[str, str] | None, reset_headers: tuple[str, ...] = ()) -> float | None:
    """The server's hint in `headers`: `retry-after-ms`, then `Retry-After`, then the longest
    of the rate-limit `reset_headers` that are present."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    hint = parse_retry_after(headers.get("retry-after"))
    if hint is not None:
        return hint
    resets = [s for s in (parse_reset(headers.get(name)) for name in reset_headers) if s is not None]
    return max(resets) if resets else None


def error_status(error: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, if any."""
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def error_retry_after(error: BaseException, reset_headers: tuple[str, ...] = ()) -> float | None:
    """The retry hint in the headers of the response an SDK exception carries."""
    return retry_after_from_headers(getattr(getattr(error, "response", None), "headers", None), reset_headers)


def body_detail(body: Any) -> str | None:
    """The server's own message in a decoded error body (`{"error": {"message": ...}}`,
    `{"error": "..."}`, `{"message": ...}`, Cloudflare's `{"errors": [{"message": ...}]}`), if it has one."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        messages = [e["message"] for e in body["errors"] if isinstance(e, dict) and isinstance(e.get("message"), str)]
        if messages:
            return "; ".join(messages)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str) and message:
            return message
    return None


def error_detail(error: BaseException) -> str:
    """The server's own message from an SDK exception, else the exception's text."""
    return body_detail(getattr(error, "body", None)) or str(error)


def request_error(
    provider: str, status: int | None, detail: str, *, model: str, key_env: str | None
) -> ProviderRequestError | None:
    """A clear `ProviderRequestError` for an HTTP `status` a retry cannot fix, else None;
    `detail` is the server's own message."""
    if status == 401:
        where = f"; check {key_env}" if key_env else ""
        message = f"{provider}: authentication failed (HTTP 401){where}: {detail}"
    elif status == 403:
        message = f"{provider}: permission denied for model '{model}' (HTTP 403): {detail}"
    elif status == 404:
        message = f"{provider}: model '{model}' or its endpoint was not found (HTTP 404): {detail}"
    elif status in (400, 413, 422):
        message = f"{provider}: request rejected (HTTP {status}): {detail}"
    else:
        return None
    return ProviderRequestError(message, status)
