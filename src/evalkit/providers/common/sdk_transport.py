"""`SDKTransport`, which drives the openai and anthropic SDKs over a pooled HTTP client and
classifies their errors, and `SDKModelAPI`, the base of the providers built on it."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

import orjson

from evalkit.model.adaptive import pool_size
from evalkit.model.api import ModelAPI
from evalkit.providers.common.http_errors import (
    MalformedResponseError,
    ProviderRequestError,
    error_detail,
    error_retry_after,
    error_status,
    is_retryable_status,
    request_error,
)
from evalkit.providers.common.per_loop import PerLoop
from evalkit.secrets import excerpt

DEFAULT_MAX_CONNECTIONS = 32
"""Default concurrency of the providers on an SDK transport."""

POOL_SIZE = 1024
"""Connections the SDK transport may open: `Model` bounds concurrency, never the pool."""


class SDKTransport:
    """An openai or anthropic SDK client over a pooled aiohttp transport.

    The client is `client_class(**settings, **model_args)`: the -M model args override. The
    SDK's own timeout is off (`Model` times each attempt and the whole request).

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
        connections: int | str = 0,
        http: str = "httpx2",
    ) -> None:
        self._sdk = sdk
        self._http = import_module(http)  # the HTTP library the SDK is built on (groq's: httpx)

        def new_client() -> Any:
            return client_class(**{"timeout": None, **settings, "http_client": self._http_client(), **model_args})

        self._pool = max(pool_size(connections, 0), POOL_SIZE)
        self.provider = provider
        self.model = model
        self.key_env = key_env
        self.reset_headers = reset_headers
        self._client = PerLoop(new_client, initial=new_client())  # made now, so a bad -M fails at once

    def _http_client(self) -> Any:
        limits = self._http.Limits(max_connections=self._pool, max_keepalive_connections=self._pool)
        try:
            return self._sdk.DefaultAioHttpClient(limits=limits)
        except RuntimeError:  # the SDK's aiohttp extra is not installed
            return self._sdk.DefaultAsyncHttpxClient(limits=limits)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` as JSON to `path` (relative to the client's base URL); the decoded reply."""
        try:
            response = await self._client.get().post(path, body=body, cast_to=self._http.Response)
        except self._sdk.APIStatusError as error:
            mapped = self.status_error(error)
            if mapped is None:
                raise
            raise mapped from error
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"{self.provider}: the reply is not a JSON object (HTTP {response.status_code}): {excerpt(response.content.decode(errors='replace'), 200)!r}"
            )
        return data

    def client(self) -> Any:
        """The SDK client of the running event loop (for the SDK's own resources, e.g. batches)."""
        return self._client.get()

    def status_error(self, error: BaseException) -> ProviderRequestError | None:
        """A clear `ProviderRequestError` for an SDK status error a retry cannot fix, else None."""
        return request_error(self.provider, error_status(error), error_detail(error), model=self.model, key_env=self.key_env)

    def is_retryable(self, error: BaseException) -> bool:
        """Dropped connections, timeouts, 408/409/425/429 and 5xx."""
        return isinstance(error, self._sdk.APIConnectionError) or is_retryable_status(error_status(error))

    def is_rate_limit(self, error: BaseException) -> bool:
        """HTTP 429."""
        return error_status(error) == 429

    def retry_after(self, error: BaseException) -> float | None:
        """The server's hint from the failed response's headers."""
        return error_retry_after(error, self.reset_headers)

    async def aclose(self) -> None:
        """Close the client; a later `post` builds a new one."""
        client = self._client.take()
        if client is not None:
            await client.close()


class SDKModelAPI(ModelAPI):
    """Base for providers whose requests go through an `SDKTransport` in `self.transport`."""

    transport: SDKTransport

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def is_retryable(self, error: BaseException) -> bool:
        return self.transport.is_retryable(error)

    def is_rate_limit(self, error: BaseException) -> bool:
        return self.transport.is_rate_limit(error)

    def retry_after(self, error: BaseException) -> float | None:
        return self.transport.retry_after(error)

    async def aclose(self) -> None:
        await self.transport.aclose()
