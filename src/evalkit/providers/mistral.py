"""`mistral`: Mistral AI chat completions and embeddings on the official `mistralai` SDK, and
Mistral models deployed on Azure AI (`mistral/azure/<deployment>`)."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
from mistralai.client import Mistral, errors

from evalkit.model.adaptive import pool_size
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.types import ChatCompletionChoice, ChatMessage, ChatMessageTool, GenerateConfig, ModelOutput, StopReason
from evalkit.providers.common.http_errors import (
    MalformedResponseError,
    MissingCredentialsError,
    body_detail,
    is_retryable_status,
    request_error,
    retry_after_from_headers,
)
from evalkit.providers.common.per_loop import PerLoop
from evalkit.providers.common.sdk_transport import DEFAULT_MAX_CONNECTIONS, POOL_SIZE
from evalkit.providers.openai.wire import PARAMS as WIRE_PARAMS
from evalkit.providers.openai.wire import chat_choice, chat_messages, chat_output, output_params, request_params, tool_params
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

PARAMS = {**{field: name for field, name in WIRE_PARAMS.items() if field != "seed"}, "seed": "random_seed",
          "reasoning_effort": "reasoning_effort"}
"""GenerateConfig field -> Mistral chat-completions parameter (the OpenAI names, but the seed)."""

OWN_FINISH_REASONS: dict[Any, StopReason] = {"model_length": "model_length", "error": "error"}
"""Mistral finish_reasons beyond OpenAI's: the context is full, the model failed mid-reply."""

MISTRAL_ENV = ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")
AZURE_ENV = ("AZUREAI_MISTRAL_API_KEY", "AZUREAI_MISTRAL_BASE_URL")
AZURE_KEY_FALLBACK = "AZURE_MISTRAL_API_KEY"
"""The older name Inspect also reads for the Azure key."""


class MistralAPI(ModelAPI):
    """Chat completions and embeddings over `mistralai.client.Mistral`.

    `mistral/<model>` reads MISTRAL_API_KEY and MISTRAL_BASE_URL (default: Mistral's API);
    `mistral/azure/<deployment>` reads AZUREAI_MISTRAL_API_KEY and AZUREAI_MISTRAL_BASE_URL
    (required). `-M` args go to the `Mistral` constructor unchanged; the SDK's own retries are
    off (`Model` retries).
    """

    provider = "mistral"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        azure = model_name.startswith("azure/")
        self.request_model = model_name.removeprefix("azure/")
        self.key_env, url_env = AZURE_ENV if azure else MISTRAL_ENV
        name = "mistral/azure" if azure else "mistral"
        api_key = api_key or get_secret(self.key_env) or (get_secret(AZURE_KEY_FALLBACK) if azure else None)
        if not api_key:
            raise MissingCredentialsError(name, self.key_env)
        base_url = base_url or get_secret(url_env)
        if azure and not base_url:
            raise MissingCredentialsError(name, url_env)
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        pool = max(pool_size(config.max_connections, 0), POOL_SIZE)

        def new_client() -> tuple[Mistral, httpx2.AsyncClient]:
            http = httpx2.AsyncClient(timeout=None, limits=httpx2.Limits(max_connections=pool, max_keepalive_connections=pool))
            settings = {"api_key": api_key, "server_url": base_url, "retry_config": None, "async_client": http}
            client = Mistral(**{**settings, **model_args})
            return client, http

        self._client = PerLoop(new_client, initial=new_client())  # made now, so a bad -M fails at once

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        request = await self.chat_request(input, tools, tool_choice, config)
        client, _ = self._client.get()
        try:
            response = await client.chat.complete_async(**request)
        except errors.MistralError as error:
            raise self._failure(error) from error
        data = response.model_dump(mode="json", by_alias=True)
        return chat_output(data, data.get("model") or self.request_model, label=self.provider, choice=_choice)

    async def chat_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """The keyword arguments of `chat.complete_async` for one request."""
        request = {"model": self.request_model, "messages": mistral_messages(input, await chat_messages(input))}
        request.update(request_params(config, PARAMS))
        if config.top_logprobs:
            request["logprobs"] = True  # top_logprobs alone returns nothing
        request.update(tool_params(tools, tool_choice, config))
        if request.get("tool_choice") == "required":
            request["tool_choice"] = "any"  # Mistral's own name for a forced tool call
        if config.response_schema is not None:
            request["response_format"] = output_params(config, self.provider)["response_format"]
        if config.reasoning_tokens is not None:
            warn_unsupported(self.provider, "reasoning_tokens", "Mistral takes reasoning_effort instead")
        return request

    async def embed(self, texts: list[str]) -> list[list[float]]:
        client, _ = self._client.get()
        try:
            response = await client.embeddings.create_async(model=self.request_model, inputs=texts)
        except errors.MistralError as error:
            raise self._failure(error) from error
        ordered = sorted(response.data, key=lambda item: item.index or 0)
        if len(ordered) != len(texts) or any(item.embedding is None for item in ordered):
            raise MalformedResponseError(f"{self.label}: {len(texts)} texts sent, {len(ordered)} embeddings received")
        return [list(item.embedding or ()) for item in ordered]

    def _failure(self, error: errors.MistralError) -> Exception:
        """A clear error for a reply a retry cannot fix, else `error` itself (judged by `is_retryable`)."""
        if isinstance(error, errors.ResponseValidationError) or error.status_code < 400:
            return MalformedResponseError(f"{self.provider}: the reply is not the JSON the API promises: {excerpt(error.body, 200)!r}")
        try:
            detail = body_detail(orjson.loads(error.body)) or excerpt(error.body)
        except orjson.JSONDecodeError:
            detail = excerpt(error.body)
        mapped = request_error(self.provider, error.status_code, detail, model=self.request_model, key_env=self.key_env)
        return mapped or error

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, errors.MistralError):
            return is_retryable_status(error.status_code)
        return isinstance(error, (httpx2.TransportError, errors.NoResponseError))

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, errors.MistralError) and error.status_code == 429

    def retry_after(self, error: BaseException) -> float | None:
        return retry_after_from_headers(error.headers) if isinstance(error, errors.MistralError) else None

    async def aclose(self) -> None:
        pair = self._client.take()
        if pair is not None:
            await pair[1].aclose()


def mistral_messages(input: list[ChatMessage], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat-completions `messages` for `input` in Mistral's form: tool messages name their
    function, tool calls carry their index, and the user message that carries tool results'
    images is folded into the tool message before it (Mistral takes no user turn right after a
    tool turn, and tool messages take content chunks)."""
    functions = {m.tool_call_id: m.function for m in input if isinstance(m, ChatMessageTool)}
    folded: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            message = {**message, "name": functions.get(message["tool_call_id"])}
        elif message.get("tool_calls"):
            message = {**message, "tool_calls": [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]}
        before = folded[-1] if folded else None
        if before is not None and before["role"] == "tool" and message["role"] == "user" and isinstance(message["content"], list):
            text = [{"type": "text", "text": before["content"]}] if isinstance(before["content"], str) else before["content"]
            folded[-1] = {**before, "content": [*text, *message["content"]]}
        else:
            folded.append(message)
    return folded


def _choice(choice: Any, label: str) -> ChatCompletionChoice:
    """A Mistral choice: content chunks (text, thinking) flattened to text and reasoning, then read
    as a chat-completions choice, with Mistral's own finish reasons kept."""
    message = choice.get("message") if isinstance(choice, dict) else None
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        text, reasoning = _chunks_text(message["content"])
        message = {**message, "content": text, **({"reasoning_content": reasoning} if reasoning else {})}
        choice = {**choice, "message": message}
    parsed = chat_choice(choice, label)
    reason = OWN_FINISH_REASONS.get(choice.get("finish_reason"))
    return parsed if reason is None else ChatCompletionChoice(parsed.message, stop_reason=reason, logprobs=parsed.logprobs)


def _chunks_text(chunks: list[Any]) -> tuple[str, str]:
    """(the text chunks joined, the thinking chunks' text joined)."""
    text, reasoning = [], []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text":
            text.append(str(chunk.get("text") or ""))
        elif chunk.get("type") == "thinking":
            inner = chunk.get("thinking") or []
            reasoning.extend(str(part.get("text") or "") for part in inner if isinstance(part, dict))
    return "".join(text), "".join(reasoning)
