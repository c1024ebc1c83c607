"""`cohere`: Cohere models through the v2 Chat and Embed APIs on the cohere SDK (`AsyncClientV2`).

`cohere/<model>`: API key from COHERE_API_KEY (or the SDK's CO_API_KEY), endpoint from
COHERE_BASE_URL (or `base_url=`). Every `-M` goes to `cohere.AsyncClientV2` unchanged (e.g.
`-M client_name=...`), except `input_type`, this provider's own: the embed input type
(default `search_document`). The SDK's own retries are off; `Model` retries.

Request (`POST /v2/chat`): messages in the v2 shape (system, user with text and `image_url`
parts, assistant with `tool_calls` and its text as `tool_plan`, tool results as `tool` messages,
errors as "Error: ..." text); tools in the function shape; tool_choice any -> REQUIRED, none ->
NONE (a ToolFunction is REQUIRED with only that tool offered, as the API cannot name one);
temperature, top_p -> p, top_k -> k, max_tokens, stop_seqs -> stop_sequences, seed,
frequency/presence penalty, logprobs, response_schema -> response_format json_object with its
json_schema, reasoning_tokens -> thinking with that token_budget.

Reply: text and thinking content, tool calls (arguments parsed, bad JSON shown to the model),
finish_reason COMPLETE/STOP_SEQUENCE -> stop, MAX_TOKENS -> max_tokens, TOOL_CALL ->
tool_calls; usage from `usage.tokens` (what the model processed), else `usage.billed_units`;
logprobs one entry per returned text piece, its log probability the sum over its tokens.

Embeddings (`POST /v2/embed`): `embedding_types` float, at most 96 texts a request.
"""

from __future__ import annotations

import json
from typing import Any

import cohere
import httpx
from cohere.core.api_error import ApiError

from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.content import Content, ContentReasoning, ContentText
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    StopReason,
)
from evalkit.providers.common.http_errors import (
    MalformedResponseError,
    MissingCredentialsError,
    error_detail,
    is_retryable_status,
    request_error,
    retry_after_from_headers,
)
from evalkit.providers.common.per_loop import PerLoop
from evalkit.providers.common.sdk_transport import DEFAULT_MAX_CONNECTIONS, POOL_SIZE
from evalkit.providers.openai.wire import chat_messages, function_tool
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolCall, ToolChoice, ToolFunction, ToolInfo, parse_tool_arguments

DEFAULT_INPUT_TYPE = "search_document"
"""The embed `input_type` unless `-M input_type=...` says otherwise."""

_PARAMS = {
    "temperature": "temperature", "top_p": "p", "top_k": "k", "max_tokens": "max_tokens", "seed": "seed",
    "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty", "logprobs": "logprobs",
}
_FINISH_REASONS: dict[str, StopReason] = {
    "COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "max_tokens", "TOOL_CALL": "tool_calls",
}
_UNSUPPORTED = ("top_logprobs", "reasoning_effort")


class CohereAPI(ModelAPI):
    """Cohere v2 chat and embed (see the module docstring)."""

    provider = "cohere"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        input_type: str = DEFAULT_INPUT_TYPE,
        **model_args: Any,
    ) -> None:
        api_key = api_key or get_secret("COHERE_API_KEY") or get_secret("CO_API_KEY")
        if not api_key:
            raise MissingCredentialsError(self.provider, "COHERE_API_KEY")
        base_url = base_url or get_secret("COHERE_BASE_URL")
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        self.input_type = input_type
        settings = {"api_key": api_key, "base_url": base_url, "max_retries": 0}

        def new_clients() -> tuple[Any, httpx.AsyncClient]:
            limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
            http = httpx.AsyncClient(timeout=None, limits=limits)  # Model times each attempt
            return cohere.AsyncClientV2(**{**settings, "httpx_client": http, **model_args}), http

        self._clients = PerLoop(new_clients, initial=new_clients())  # made now, so a bad -M fails at once

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        request = await self.chat_request(input, tools, tool_choice, config)
        response = await self._call(self._clients.get()[0].chat(**request))
        message = getattr(response, "message", None)
        if message is None:
            raise MalformedResponseError(f"{self.label}: the reply has no 'message': {excerpt(str(response), 200)}")
        calls = _tool_calls(message.tool_calls)
        reason = _FINISH_REASONS.get(str(response.finish_reason), "unknown")
        choice = ChatCompletionChoice(
            ChatMessageAssistant(_content(message), tool_calls=calls),
            "tool_calls" if calls and reason in ("stop", "unknown") else reason,
            logprobs=_logprobs(response.logprobs),
        )
        return ModelOutput(self.model_name, [choice], usage=_usage(response.usage))

    async def chat_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """The keyword arguments of `AsyncClientV2.chat` for one request."""
        request: dict[str, Any] = {"model": self.model_name, "messages": [_v2_message(m) for m in await chat_messages(input)]}
        request.update({param: getattr(config, field) for field, param in _PARAMS.items() if getattr(config, field) is not None})
        if config.stop_seqs:
            request["stop_sequences"] = list(config.stop_seqs)
        if config.response_schema is not None:
            request["response_format"] = {"type": "json_object", "json_schema": config.response_schema.json_schema}
        if config.reasoning_tokens is not None:
            request["thinking"] = {"type": "enabled", "token_budget": config.reasoning_tokens}
        if tools:
            request.update(self._tool_params(tools, tool_choice, config))
        for field in _UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        if config.num_choices is not None and config.num_choices > 1:
            warn_unsupported(self.provider, "num_choices", "one choice per request")
        return request

    def _tool_params(self, tools: list[ToolInfo], choice: ToolChoice | None, config: GenerateConfig) -> dict[str, Any]:
        if config.parallel_tool_calls is False:
            warn_unsupported(self.provider, "parallel_tool_calls", "the v2 Chat API has no switch for parallel tool calls")
        if isinstance(choice, ToolFunction):
            tools = [t for t in tools if t.name == choice.name] or tools
        params: dict[str, Any] = {"tools": [function_tool(t) for t in tools]}
        if choice == "any" or isinstance(choice, ToolFunction):
            params["tool_choice"] = "REQUIRED"
        elif choice == "none":
            params["tool_choice"] = "NONE"
        return params

    async def embed(self, texts: list[str]) -> list[list[float]]:
        response = await self._call(self._clients.get()[0].embed(
            model=self.model_name, texts=texts, input_type=self.input_type, embedding_types=["float"]))
        vectors = getattr(getattr(response, "embeddings", None), "float_", None)
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise MalformedResponseError(f"{self.label}: the embed reply has no float embedding per text: "
                                         f"{excerpt(str(response), 200)}")
        return [[float(x) for x in vector] for vector in vectors]

    async def _call(self, request: Any) -> Any:
        """Await an SDK call, turning what a retry cannot fix into a clear error."""
        try:
            return await request
        except ApiError as error:
            status = error.status_code
            if status is not None and 200 <= status < 300:  # the SDK's error for a body that is not JSON
                raise MalformedResponseError(
                    f"{self.label}: the reply is not JSON (HTTP {status}): {excerpt(str(error.body), 200)!r}") from None
            mapped = request_error(self.provider, status, error_detail(error), model=self.model_name, key_env="COHERE_API_KEY")
            if mapped is None:
                raise
            raise mapped from error

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, ApiError):
            return is_retryable_status(error.status_code)
        return isinstance(error, httpx.TransportError)

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, ApiError) and error.status_code == 429

    def retry_after(self, error: BaseException) -> float | None:
        headers = getattr(error, "headers", None) if isinstance(error, ApiError) else None
        return retry_after_from_headers({k.lower(): v for k, v in headers.items()} if headers else None)

    async def aclose(self) -> None:
        clients = self._clients.take()
        if clients is not None:
            await clients[1].aclose()


def _v2_message(message: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions message in the v2 shape: an assistant's text goes as `tool_plan`
    beside its tool calls (the API's field for it), and no empty content is sent."""
    if message["role"] != "assistant" or not message.get("tool_calls"):
        return message
    text = message.get("content")
    return {"role": "assistant", "tool_calls": message["tool_calls"], **({"tool_plan": text} if text else {})}


def _content(message: Any) -> str | list[Content]:
    """The reply's text (its `tool_plan` when there is no text), with thinking as ContentReasoning."""
    texts: list[str] = []
    reasoning: list[Content] = []
    for item in message.content or []:
        if getattr(item, "type", None) == "text":
            texts.append(item.text or "")
        elif getattr(item, "type", None) == "thinking":
            reasoning.append(ContentReasoning(item.thinking or ""))
    text = "".join(texts) or (message.tool_plan or "")
    return [*reasoning, ContentText(text)] if reasoning else text


def _tool_calls(calls: Any) -> list[ToolCall] | None:
    """The reply's tool calls; arguments that are not a JSON object become a parse_error."""
    result = []
    for index, call in enumerate(calls or []):
        function = call.function
        raw = function.arguments if function is not None else None
        arguments, error = parse_tool_arguments(raw if raw is None or isinstance(raw, str) else json.dumps(raw))
        result.append(ToolCall(call.id or f"call_{index}", (function.name if function else None) or "", arguments,
                               parse_error=error))
    return result or None


def _usage(usage: Any) -> ModelUsage | None:
    counts = (getattr(usage, "tokens", None) or getattr(usage, "billed_units", None)) if usage is not None else None
    if counts is None:
        return None
    input_tokens, output_tokens = int(counts.input_tokens or 0), int(counts.output_tokens or 0)
    return ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens)


def _logprobs(items: Any) -> tuple[Logprob, ...] | None:
    if not items:
        return None
    return tuple(Logprob(item.text or "", float(sum(item.logprobs or ()))) for item in items)
