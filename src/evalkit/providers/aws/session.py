"""What providers on one aioboto3 client share: session and credentials from the environment,
`-M` to `session.client(...)` with botocore retries off, and AWS error classification."""

from __future__ import annotations

import asyncio
import inspect
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
import anyio
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, NoRegionError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from evalkit.model.api import ModelAPI
from evalkit.model.types import GenerateConfig
from evalkit.providers.common.http_errors import MissingCredentialsError, is_retryable_status, retry_after_from_headers
from evalkit.secrets import get_secret

READ_TIMEOUT = 3600.0
"""botocore's read timeout, above any attempt_timeout: `Model` times each attempt and the whole request."""

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
RETRYABLE_CODES = THROTTLING_CODES | frozenset({
    "ServiceUnavailableException",
    "ServiceUnavailable", "InternalServerException", "InternalFailure", "ModelNotReadyException",
    "ModelTimeoutException",
})

class AWSAPI(ModelAPI):
    """Base for providers on one aioboto3 client, created on first use and closed by `aclose`."""

    provider = ""
    service = ""
    base_url_env = ""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        client_config: dict[str, Any] | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url or get_secret(self.base_url_env), api_key=api_key, config=config, **model_args)
        access_key = get_secret("AWS_ACCESS_KEY_ID")
        self._session = aioboto3.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=get_secret("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=get_secret("AWS_SESSION_TOKEN"),
            region_name=get_secret("AWS_DEFAULT_REGION") or get_secret("AWS_REGION"),
        )
        self._credential = f"{access_key or get_secret('AWS_PROFILE')}@{self._session.region_name}"
        self._client_args = self._with_defaults(model_args, client_config)
        inspect.signature(self._session.client).bind(self.service, **self._client_args)  # TypeError names a bad -M
        self._client: Any = None
        self._lock: anyio.Lock | None = None
        self._stack = AsyncExitStack()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _with_defaults(self, model_args: dict[str, Any], client_config: dict[str, Any] | None) -> dict[str, Any]:
        """session.client arguments: -M, the endpoint, and a Config with retries off."""
        args = dict(model_args)
        if self.base_url:
            args.setdefault("endpoint_url", self.base_url)
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=READ_TIMEOUT)
        args["config"] = config.merge(Config(**client_config)) if client_config else config
        return args

    async def call(self, operation: str, **request: Any) -> dict[str, Any]:
        """Run one client `operation`, turning missing credentials into a clear error."""
        try:
            client = await self._get_client()
            return await getattr(client, operation)(**request)
        except NoRegionError:
            raise MissingCredentialsError(self.provider, "AWS_DEFAULT_REGION", "-M region_name=...") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise MissingCredentialsError(
                self.provider, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)", "AWS_PROFILE"
            ) from None

    async def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the client's connections belong to the loop that opened them
            self._client, self._lock, self._stack, self._loop = None, None, AsyncExitStack(), loop
        if self._client is None:
            self._lock = self._lock or anyio.Lock()
            async with self._lock:
                if self._client is None:
                    self._client = await self._stack.enter_async_context(
                        self._session.client(self.service, **self._client_args)
                    )
        return self._client

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return error.response.get("Error", {}).get("Code") in RETRYABLE_CODES or is_retryable_status(status)
        return isinstance(error, (HTTPClientError, BotocoreConnectionError))

    def is_rate_limit(self, error: BaseException) -> bool:
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return error.response.get("Error", {}).get("Code") in THROTTLING_CODES or status == 429
        return False

    def credential(self) -> str | None:
        """The access key (or profile) and region, which picks the endpoint when base_url is not set."""
        return self._credential

    def retry_after(self, error: BaseException) -> float | None:
        if isinstance(error, ClientError):
            return retry_after_from_headers(error.response.get("ResponseMetadata", {}).get("HTTPHeaders"))
        return None

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None
