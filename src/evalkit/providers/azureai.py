"""`azureai`: Azure AI model inference deployments (Llama, Phi, Mistral, ... behind one chat
API) on the `azure-ai-inference` SDK's async clients: chat completions, with tools natively or
emulated in the prompt, and embeddings."""

from __future__ import annotations

import json
from typing import Any

from azure.ai.inference.aio import ChatCompletionsClient, EmbeddingsClient
from azure.ai.inference.models import JsonSchemaFormat
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from evalkit.errors import ImagesUnsupportedError, ModelArgsError
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.content import has_image
from evalkit.model.types import ChatCompletionChoice, ChatMessage, ChatMessageAssistant, ChatMessageTool, GenerateConfig, ModelOutput
from evalkit.providers.common.http_errors import (
    MalformedResponseError,
    MissingCredentialsError,
    body_detail,
    is_retryable_status,
    request_error,
    retry_after_from_headers,
)
from evalkit.providers.common.per_loop import PerLoop
from evalkit.providers.common.sdk_transport import DEFAULT_MAX_CONNECTIONS
from evalkit.providers.local.chat_prompt import ChatRequest, chat_request, described_tools_chat, reply_choice
from evalkit.providers.openai.wire import (
    ChoiceParser,
    chat_messages,
    chat_output,
    choice_text,
    request_params,
    stop_reason,
    tool_params,
)
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

KEY_ENV, KEY_FALLBACK, URL_ENV = "AZUREAI_API_KEY", "AZURE_API_KEY", "AZUREAI_BASE_URL"

PARAMS = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop_seqs": "stop",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
"""GenerateConfig field -> Azure AI chat-completions parameter."""

UNSUPPORTED = ("top_k", "num_choices", "logprobs", "top_logprobs", "reasoning_effort", "reasoning_tokens",
               "parallel_tool_calls")
"""GenerateConfig fields the Azure AI model inference API has no parameter for."""


class AzureAIAPI(ModelAPI):
    """`azureai/<deployment>`: chat completions over `ChatCompletionsClient` at AZUREAI_BASE_URL
    with AZUREAI_API_KEY (or AZURE_API_KEY); the deployment name goes as the request's `model`.

    Own model arg: `emulate_tools` (default: on when the deployment's name contains "llama"):
    tools are described in the system prompt and the calls read back from the reply's text,
    for deployments without native tool calling. Every other `-M` goes to the
    `ChatCompletionsClient` (and `EmbeddingsClient`) constructor; the SDK's own retries are off.
    """

    provider = "azureai"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        emulate_tools: bool | None = None,
        **model_args: Any,
    ) -> None:
        api_key = api_key or get_secret(KEY_ENV) or get_secret(KEY_FALLBACK)
        if not api_key:
            raise MissingCredentialsError(self.provider, KEY_ENV)
        base_url = base_url or get_secret(URL_ENV)
        if not base_url:
            raise MissingCredentialsError(self.provider, URL_ENV)
        if emulate_tools is not None and not isinstance(emulate_tools, bool):
            raise ModelArgsError(f"-M emulate_tools must be true or false (got {emulate_tools!r})")
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        self.emulate_tools = "llama" in model_name.lower() if emulate_tools is None else emulate_tools
        settings = {"endpoint": base_url, "credential": AzureKeyCredential(api_key), "retry_total": 0, **model_args}
        self._chat = PerLoop(lambda: ChatCompletionsClient(**settings), initial=ChatCompletionsClient(**settings))
        self._embeddings = PerLoop(lambda: EmbeddingsClient(**settings))

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        for field in UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        params = {"model": self.model_name, **request_params(config, PARAMS)}
        if config.response_schema is not None:
            schema = config.response_schema
            params["response_format"] = JsonSchemaFormat(name=schema.name, schema=schema.json_schema,
                                                         description=schema.description, strict=schema.strict)
        emulated = self._emulated(input, tools, tool_choice)
        if emulated is None:
            params["messages"] = await chat_messages(input)
            params.update(tool_params(tools, tool_choice, GenerateConfig()))  # no parallel_tool_calls: warned above
        else:
            params["messages"] = described_tools_chat(emulated.messages, emulated.tools)
        data = await self._call(self._chat.get().complete(**params))
        parse = None if emulated is None else emulated_choice(emulated)
        return chat_output(data, data.get("model") or self.model_name, label=self.provider, choice=parse)

    def _emulated(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None) -> ChatRequest | None:
        """The request with tools described in the prompt, when emulating and the conversation
        involves tools; None for the native request."""
        involved = tools or any(isinstance(m, ChatMessageTool) or (isinstance(m, ChatMessageAssistant) and m.tool_calls)
                                for m in input)
        if not self.emulate_tools or not involved:
            return None
        if any(has_image(m.content) for m in input):
            raise ImagesUnsupportedError("azureai with emulated tools sends text only, but a message holds an image; "
                                         "use -M emulate_tools=false if the deployment calls tools itself")
        if tools and tool_choice not in (None, "auto", "none"):
            warn_unsupported(self.provider, "tool_choice", "with emulated tools a call cannot be forced; offered as 'auto'")
            tool_choice = "auto"
        return chat_request(self.provider, input, tools, tool_choice)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        data = await self._call(self._embeddings.get().embed(input=texts, model=self.model_name))
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(texts):
            raise MalformedResponseError(f"{self.label}: {len(texts)} texts sent, an answer without as many embeddings came back")
        ordered = sorted(items, key=lambda item: item.get("index") or 0)
        if not all(isinstance(item.get("embedding"), list) for item in ordered):
            raise MalformedResponseError(f"{self.label}: an embedding is not a list of numbers")
        return [[float(x) for x in item["embedding"]] for item in ordered]

    async def _call(self, call: Any) -> dict[str, Any]:
        """Await an SDK call; its result as the JSON the server sent, or a clear error."""
        try:
            result = await call
        except HttpResponseError as error:
            raise self._failure(error) from error
        except ValueError as error:  # a 200 whose body is not JSON
            raise MalformedResponseError(f"{self.provider}: the reply is not JSON: {error}") from error
        return result.as_dict()

    def _failure(self, error: HttpResponseError) -> Exception:
        """A clear error for a status a retry cannot fix, else `error` itself."""
        if error.status_code is not None and error.status_code < 400:
            return MalformedResponseError(f"{self.provider}: the reply is not the JSON the API promises: {error.message}")
        text = error.response.text() if error.response is not None else ""
        try:
            detail = body_detail(json.loads(text)) or excerpt(text)
        except ValueError:
            detail = excerpt(text) or str(error.message)
        return request_error(self.provider, error.status_code, detail, model=self.model_name, key_env=KEY_ENV) or error

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            return is_retryable_status(error.status_code)
        return isinstance(error, (ServiceRequestError, ServiceResponseError))

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, HttpResponseError) and error.status_code == 429

    def retry_after(self, error: BaseException) -> float | None:
        response = getattr(error, "response", None)
        return retry_after_from_headers(response.headers) if isinstance(error, HttpResponseError) and response else None

    async def aclose(self) -> None:
        for clients in (self._chat, self._embeddings):
            client = clients.take()
            if client is not None:
                await client.close()


def emulated_choice(request: ChatRequest) -> ChoiceParser:
    """A parser for the choices of a reply to `request`: tool calls and reasoning read back from the text."""

    def parse(choice: Any, label: str) -> ChatCompletionChoice:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return reply_choice(choice_text(choice, content, label), stop_reason(choice.get("finish_reason")), request)

    return parse
