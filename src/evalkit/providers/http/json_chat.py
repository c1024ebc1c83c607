"""`JSONChatAPI`, the base of the SDK-less providers (transform, azureml, cf, goodfire): one
JSON POST per request on one shared httpx client, in and out of the OpenAI chat-completions
shape (tools, images, reasoning and structured output included)."""

from __future__ import annotations

from typing import Any

import httpx

from evalkit.errors import ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput
from evalkit.providers.common.per_loop import PerLoop
from evalkit.providers.common.http_errors import (
    MalformedResponseError,
    MissingCredentialsError,
    body_detail,
    is_retryable_status,
    request_error,
    retry_after_from_headers,
)
from evalkit.providers.openai.wire import chat_output, chat_request
from evalkit.secrets import excerpt, get_secret, looks_secret
from evalkit.tool.types import ToolChoice, ToolInfo


BODY_CLIENT_ARGS = ("headers", "extra_headers", "extra_body")
"""The -M args that configure the client when every other -M goes in the request body."""


class JSONChatAPI(ModelAPI):
    """Base for SDK-less providers: POST one JSON body per request on one shared httpx client.

    Subclasses set `url` and headers through `_connect`, name their key's variable in
    `key_env`, and may override `openai_request`, `request_body` and `response_data` to
    translate from and to the OpenAI chat-completions shape. Of the -M args, `headers` and
    `extra_headers` are merged over the provider's own headers, `extra_body` (a mapping) and
    `logit_bias` are merged into every OpenAI-style request, and the rest go to
    `httpx.AsyncClient`.
    """

    provider = "http"
    url = ""
    key_env: str | None = None
    extra_body: dict[str, Any] = {}

    def _connect(self, url: str, headers: dict[str, str], client_args: dict[str, Any]) -> None:
        self.url = url
        extra = {**_mapping(client_args, "headers"), **_mapping(client_args, "extra_headers")}
        headers = {**headers, **{str(name): str(value) for name, value in extra.items()}}
        self.extra_body = {**_mapping(client_args, "extra_body")}
        if "logit_bias" in client_args:
            self.extra_body["logit_bias"] = client_args.pop("logit_bias")
        self._auth = sorted((name.lower(), value) for name, value in headers.items() if looks_secret(name))
        client_args.setdefault("timeout", httpx.Timeout(None, connect=30.0))  # Model owns timeouts
        def client() -> httpx.AsyncClient:
            return httpx.AsyncClient(headers=headers, **client_args)

        self._client = PerLoop(client, initial=client())  # made now, so a bad -M fails at once

    def _connect_body_args(self, url: str, headers: dict[str, str], model_args: dict[str, Any]) -> None:
        """`_connect` for a provider whose -M args are request parameters: `headers`,
        `extra_headers` and `extra_body` as `_connect` takes them, every other arg into the body."""
        body_args = dict(model_args)
        client_args = {name: body_args.pop(name) for name in BODY_CLIENT_ARGS if name in body_args}
        self._connect(url, headers, client_args)
        self.extra_body.update(body_args)

    async def openai_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """The OpenAI chat-completions request for one `generate` call."""
        return await chat_request(self.model_name, input, config, tools, tool_choice, provider=self.provider)

    def request_body(self, request: dict[str, Any], config: GenerateConfig) -> Any:
        """The JSON body sent for the OpenAI-style `request`."""
        return request

    def response_data(self, data: Any) -> Any:
        """The OpenAI chat-completion-shaped form of the parsed reply `data`."""
        return data

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        request = {**await self.openai_request(input, tools, tool_choice, config), **self.extra_body}
        body = self.request_body(request, config)
        response = await self._client.get().post(self.url, json=body)
        if response.status_code >= 400:
            raise self._status_error(response)
        try:
            data = response.json()
        except ValueError:
            raise MalformedResponseError(f"{self.label}: response is not JSON: {excerpt(response.text)!r}") from None
        return chat_output(self.response_data(data), self.label)

    def _status_error(self, response: httpx.Response) -> Exception:
        """A clear `ProviderRequestError` for a status a retry cannot fix, else an
        `httpx.HTTPStatusError` that `is_retryable` judges."""
        try:
            detail = body_detail(response.json()) or excerpt(response.text)
        except ValueError:
            detail = excerpt(response.text)
        error = request_error(self.provider, response.status_code, detail, model=self.model_name, key_env=self.key_env)
        if error is not None:
            return error
        return httpx.HTTPStatusError(
            f"{self.label}: HTTP {response.status_code} from {self.url}: {excerpt(response.text)}",
            request=response.request,
            response=response,
        )

    def credential(self) -> str | None:
        """The request's credential headers (Authorization, X-API-Key, ...)."""
        return repr(self._auth) if self._auth else None

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, httpx.HTTPStatusError):
            return is_retryable_status(error.response.status_code)
        return isinstance(error, httpx.TransportError)

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 429

    def retry_after(self, error: BaseException) -> float | None:
        if isinstance(error, httpx.HTTPStatusError):
            return retry_after_from_headers(error.response.headers)
        return None

    async def aclose(self) -> None:
        client = self._client.take()
        if client is not None:
            await client.aclose()


def _mapping(args: dict[str, Any], name: str) -> dict[str, Any]:
    """Pop the -M arg `name`, which must be a mapping (absent: empty)."""
    value = args.pop(name, None) or {}
    if not isinstance(value, dict):
        raise ModelArgsError(f"-M {name} must be a mapping, e.g. {name}={{key: value}} (got {value!r})")
    return value


def auth_header(
    provider: str, api_key: str | None, env: str, *, required: bool, header: str = "Authorization", scheme: str = "Bearer"
) -> dict[str, str]:
    """The auth header for `api_key`, else for the secret `env`; `{}` when neither is set and
    the key is optional."""
    key = api_key or get_secret(env)
    if not key:
        if required:
            raise MissingCredentialsError(provider, env)
        return {}
    return {header: f"{scheme} {key}" if scheme else key}
