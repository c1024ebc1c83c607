"""What HTTP providers share about errors: retry hints, which statuses are transient, clear
errors for missing credentials and rejected requests, and `SDKTransport`, which drives the
openai and anthropic SDKs and classifies their errors.

The helpers are SDK-agnostic: errors are read through the `status_code`, `response.headers`
and `body` attributes that the openai and anthropic SDKs' exceptions (and most others) carry.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, Mapping

import orjson

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
    """The server refused the request in a way a retry cannot fix (400, 401, 403, 404, 422)."""

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


def error_detail(error: BaseException) -> str:
    """The server's own message from an SDK exception (`{"error": {"message": ...}}` and the
    like), else the exception's text."""
    body: Any = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str) and message:
            return message
    return str(error)


def request_error(provider: str, error: BaseException, *, model: str, key_env: str | None) -> ProviderRequestError | None:
    """A clear `ProviderRequestError` for a status a retry cannot fix, else None."""
    status = error_status(error)
    detail = error_detail(error)
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


POOL_SIZE = 1024
"""Connections the SDK transport may open: `Model` bounds concurrency, never the pool."""


class SDKTransport:
    """An openai or anthropic SDK client over a pooled aiohttp transport.

    The client is `client_class(**settings, **model_args)`: the -M model args override.

    Both SDKs share one generated client design; this drives it through its documented
    low-level path, `client.post(path, body=..., cast_to=httpx2.Response)`, and decodes the
    JSON itself, skipping request-parameter transforms and pydantic response models (most of
    the SDK's per-request CPU). The client is rebuilt when used from a new event loop or after
    `aclose`, since HTTP connections belong to the loop that opened them.
    """

    def __init__(
        self,
        sdk: ModuleType,
        client_class: type,
        settings: dict[str, Any],
        model_args: dict[str, Any],
        *,
        provider: str,
        model: str,
        key_env: str | None,
        reset_headers: tuple[str, ...] = (),
        connections: int = 0,
    ) -> None:
        self._sdk = sdk
        self._new_client = lambda http_client: client_class(**{**settings, "http_client": http_client, **model_args})
        self._pool = max(connections, POOL_SIZE)
        self.provider = provider
        self.model = model
        self.key_env = key_env
        self.reset_headers = reset_headers
        self.client: Any = self._new_client(self._http_client())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fresh = True

    def _http_client(self) -> Any:
        import httpx2

        limits = httpx2.Limits(max_connections=self._pool, max_keepalive_connections=self._pool)
        try:
            return self._sdk.DefaultAioHttpClient(limits=limits)
        except RuntimeError:  # the SDK's aiohttp extra is not installed
            return self._sdk.DefaultAsyncHttpxClient(limits=limits)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` as JSON to `path` (relative to the client's base URL); the decoded reply."""
        import httpx2

        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if not self._fresh:
                self.client = self._new_client(self._http_client())
            self._loop, self._fresh = loop, False
        try:
            response = await self.client.post(path, body=body, cast_to=httpx2.Response)
        except self._sdk.APIStatusError as error:
            mapped = request_error(self.provider, error, model=self.model, key_env=self.key_env)
            if mapped is None:
                raise
            raise mapped from error
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"{self.provider}: the reply is not a JSON object (HTTP {response.status_code}): {response.content[:200]!r}"
            )
        return data

    def is_retryable(self, error: BaseException) -> bool:
        """Dropped connections, timeouts, 408/409/425/429 and 5xx."""
        return isinstance(error, self._sdk.APIConnectionError) or is_retryable_status(error_status(error))

    def retry_after(self, error: BaseException) -> float | None:
        """The server's hint from the failed response's headers."""
        return error_retry_after(error, self.reset_headers)

    async def aclose(self) -> None:
        """Close the client; a later `post` builds a new one."""
        await self.client.close()
        self._loop, self._fresh = None, False
