"""HTTP error helpers shared by providers: Retry-After parsing and status classification."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Mapping

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""HTTP statuses worth retrying: timeouts, conflicts, rate limits, overload and server errors."""


def is_retryable_status(status: int | None) -> bool:
    """Whether an HTTP `status` is transient (429, 5xx, 408 and similar)."""
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header value: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - time.time()
    return max(seconds, 0.0)


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """The retry hint in response `headers`: `retry-after-ms`, then `Retry-After`."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))
