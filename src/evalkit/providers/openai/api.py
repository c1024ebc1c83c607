"""`openai`: OpenAI (and Azure OpenAI) chat completions, or legacy completions, on the openai SDK.

`compatible.py` registers OpenAI-compatible services on the same class with their own `Service`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai

from evalkit.errors import ModelArgsError
from evalkit.model.api import warn_unsupported
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelOutput,
)
from evalkit.providers.common.http_errors import MalformedResponseError, MissingCredentialsError
from evalkit.providers.openai.wire import (
    OUTPUT_PARAMS,
    PARAMS,
    ChoiceParser,
    chat_choice,
    chat_messages,
    chat_output,
    choice_text,
    logprob,
    output_params,
    request_params,
    stop_reason,
    text_prompt,
    tool_params,
)
from evalkit.providers.common.sdk_transport import SDKModelAPI, SDKTransport
from evalkit.secrets import get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

_COMPLETION_MODEL = re.compile(r"-instruct\b|davinci|babbage")
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
_RESET_HEADERS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_OWN_PARAMS = ("max_tokens", "top_k", "logprobs", "top_logprobs")
_PARAMS = {field: name for field, name in PARAMS.items() if field not in _OWN_PARAMS}
"""The shared parameters both endpoints send as they are; `_request` sets the others."""


@dataclass(frozen=True)
class Service:
    """Where an OpenAI-compatible API lives and what it accepts beyond OpenAI's parameters."""

    name: str
    key_env: str
    base_url_env: str
    default_base_url: str | None = None
    key_required: bool = True
    top_k: bool = False
    body_args: tuple[str, ...] = ()
    """-M arguments sent in every request body instead of to the client constructor."""
    batches: str | None = None
    """The file purpose of its OpenAI-style Batch API ("batch"; Together: "batch-api"), None
    when it has none (batch mode then sends requests one by one)."""


OPENAI = Service("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", batches="batch")
AZURE_API_VERSION = "2024-10-21"
"""The latest GA version of Azure OpenAI's data-plane inference API (Azure OpenAI REST API reference)."""
BODY_ARGS = ("logit_bias",)
"""-M arguments every OpenAI-style API takes in the request body."""
EMBED_ARGS = ("dimensions",)
"""-M arguments sent in every embeddings request body (and only there)."""


class OpenAIAPI(SDKModelAPI):
    """Chat completions (default) or legacy completions over `openai.AsyncOpenAI`.

    `openai/azure/<deployment>` uses `AsyncAzureOpenAI` (AZUREAI_OPENAI_API_KEY,
    AZUREAI_OPENAI_BASE_URL, OPENAI_API_VERSION, default `AZURE_API_VERSION`). Own model args:
    `api` ("chat" or "completions"; completions is the default for *-instruct, davinci and
    babbage models), `extra_body` (a mapping merged into every request body), `extra_headers`
    (sent with every request) and `logit_bias` (sent in the body). Every other model arg goes
    to the client constructor unchanged.

    Chat sends tools, images, `reasoning_effort` and `response_format`, and reads back tool
    calls and the reasoning compatible servers return. Completions takes text only: no tools
    (a tool request fails with one line), an image is an error, reasoning and structured
    output settings are dropped with a warning.

    Embeddings: `POST /embeddings` (model = the model or Azure deployment name, float vectors,
    at most 96 texts a request); `-M dimensions=N` is sent with them only.
    """

    service: Service = OPENAI
    _batches: Any = None
    """The batch protocol, made on first use in batch mode."""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        api: str | None = None,
        **model_args: Any,
    ) -> None:
        service = self.service
        self.provider = service.name
        self.body_args = request_extras(model_args, (*BODY_ARGS, *service.body_args))
        self.embed_args = {name: model_args.pop(name) for name in EMBED_ARGS if name in model_args}
        azure = service is OPENAI and model_name.startswith("azure/")
        self.request_model = model_name.removeprefix("azure/") if azure else model_name
        if api is None:
            automatic = service is OPENAI and _COMPLETION_MODEL.search(self.request_model)
            api = "completions" if automatic else "chat"
        if api not in ("chat", "completions"):
            raise ModelArgsError(f"-M api must be 'chat' or 'completions' (got {api!r})")
        self.endpoint = api
        self.supports_tools = api == "chat"
        self.max_tokens_param = (
            "max_completion_tokens" if service is OPENAI and _REASONING_MODEL.match(self.request_model) else "max_tokens"
        )
        if azure:
            key_env = "AZUREAI_OPENAI_API_KEY"
            client_class, settings = openai.AsyncAzureOpenAI, _azure_settings(base_url, api_key, model_args)
            base_url = settings["azure_endpoint"]
        else:
            key_env = service.key_env
            client_class, settings = openai.AsyncOpenAI, _settings(service, base_url, api_key)
            base_url = settings["base_url"]
        super().__init__(model_name, base_url=base_url, api_key=settings["api_key"], config=config, **model_args)
        self.transport = SDKTransport(
            openai, client_class, settings, model_args, provider=service.name, model=self.request_model, key_env=key_env,
            reset_headers=_RESET_HEADERS, connections=config.max_connections or 0,
        )

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        return self.batch_output(await self.transport.post(path, await self.batch_body(input, tools, tool_choice, config)))

    async def batch_body(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """The request body `generate` sends (in batch mode, one line of a batch)."""
        if self.endpoint == "chat":
            body = self._request(config, "messages", await chat_messages(input))
            body.update(tool_params(tools, tool_choice, config))
            body.update(output_params(config, self.service.name))
        else:
            label = f"{self.label} (completions API)"
            body = self._request(config, "prompt", "\n\n".join(text_prompt(m, label) for m in input))
            for field in (*OUTPUT_PARAMS, "reasoning_tokens"):
                if getattr(config, field) is not None:
                    warn_unsupported(self.service.name, field, "the completions API has no such parameter")
        return {**body, **self.body_args}

    def batch_output(self, data: dict[str, Any]) -> ModelOutput:
        """The ModelOutput of a reply body, direct or from a batch."""
        return self.output(data, chat_choice if self.endpoint == "chat" else _completion_choice)

    def batch_protocol(self) -> Any:
        """OpenAI's Batch API (files + /v1/batches) for services that have it (openai, together)."""
        if not self.service.batches or self.request_model != self.model_name:  # Azure deployments: not supported
            return None
        if self._batches is None:
            from evalkit.providers.batch.openai import OpenAIBatchProtocol

            endpoint = "/v1/chat/completions" if self.endpoint == "chat" else "/v1/completions"
            self._batches = OpenAIBatchProtocol(self.transport, endpoint, purpose=self.service.batches)
        return self._batches

    def output(self, data: dict[str, Any], parse: ChoiceParser) -> ModelOutput:
        """The ModelOutput for the reply `data`, each choice read by `parse`; a service whose
        replies carry more than OpenAI's (citations, timings) adds it here."""
        return chat_output(data, data.get("model") or self.request_model, label=self.service.name, choice=parse)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """`POST /embeddings` with the model name, the texts as `input` and `-M dimensions`."""
        data = await self.transport.post("/embeddings", {"model": self.request_model, "input": texts, **self.embed_args})
        return embedding_vectors(data, self.label)

    def _request(self, config: GenerateConfig, input_name: str, input_value: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.request_model, input_name: input_value}
        body.update(request_params(config, _PARAMS))
        if config.max_tokens is not None:
            body["max_tokens" if self.endpoint == "completions" else self.max_tokens_param] = config.max_tokens
        if config.top_k is not None:
            if self.service.top_k:
                body["top_k"] = config.top_k
            else:
                warn_unsupported(self.service.name, "top_k")
        if config.logprobs or config.top_logprobs:
            if self.endpoint == "completions":
                body["logprobs"] = config.top_logprobs or 0
            else:
                body["logprobs"] = True
                if config.top_logprobs:
                    body["top_logprobs"] = config.top_logprobs
        return body


def request_extras(model_args: dict[str, Any], body_args: tuple[str, ...]) -> dict[str, Any]:
    """Take the body-bound -M args (`body_args`, `extra_body`) out of `model_args`, and move
    `extra_headers` into the client's `default_headers`; the extras for every request body."""
    body = {name: model_args.pop(name) for name in body_args if name in model_args}
    extra_body = model_args.pop("extra_body", None) or {}
    extra_headers = model_args.pop("extra_headers", None) or {}
    if not isinstance(extra_body, dict) or not isinstance(extra_headers, dict):
        raise ModelArgsError("-M extra_body and -M extra_headers must be mappings, e.g. extra_body={safe_prompt: true}")
    if extra_headers:
        model_args["default_headers"] = {**(model_args.get("default_headers") or {}), **extra_headers}
    return {**body, **extra_body}


def _settings(service: Service, base_url: str | None, api_key: str | None) -> dict[str, Any]:
    """`AsyncOpenAI` settings for `service`: its base URL and key from the environment."""
    base_url = base_url or get_secret(service.base_url_env) or service.default_base_url
    if base_url is None and service is not OPENAI:
        raise MissingCredentialsError(service.name, service.base_url_env)
    api_key = api_key or get_secret(service.key_env)
    if api_key is None:
        if service.key_required:
            raise MissingCredentialsError(service.name, service.key_env)
        api_key = "none"  # the SDK insists on a key; keyless servers ignore it
    settings: dict[str, Any] = {"api_key": api_key, "base_url": base_url, "max_retries": 0}
    if service is OPENAI:
        settings.update(organization=get_secret("OPENAI_ORG_ID"), project=get_secret("OPENAI_PROJECT_ID"))
    return settings


def _azure_settings(base_url: str | None, api_key: str | None, model_args: dict[str, Any]) -> dict[str, Any]:
    """`AsyncAzureOpenAI` settings: endpoint, key and API version from the environment."""
    endpoint = base_url or get_secret("AZUREAI_OPENAI_BASE_URL")
    if endpoint is None:
        raise MissingCredentialsError("openai/azure", "AZUREAI_OPENAI_BASE_URL")
    api_key = api_key or get_secret("AZUREAI_OPENAI_API_KEY")
    if api_key is None and not {"azure_ad_token", "azure_ad_token_provider"} & set(model_args):
        raise MissingCredentialsError("openai/azure", "AZUREAI_OPENAI_API_KEY")
    api_version = model_args.get("api_version") or get_secret("OPENAI_API_VERSION") or AZURE_API_VERSION
    return {"api_key": api_key, "azure_endpoint": endpoint, "api_version": api_version, "max_retries": 0}


def embedding_vectors(data: dict[str, Any], label: str) -> list[list[float]]:
    """The vectors of an embeddings reply's `data` items, in the order of their `index`."""
    items = data.get("data")
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("embedding"), list) for i in items):
        raise MalformedResponseError(f"{label}: embeddings reply without a data list of embeddings")
    return [item["embedding"] for item in sorted(items, key=lambda item: item.get("index", 0))]


def _completion_choice(choice: Any, label: str) -> ChatCompletionChoice:
    """One legacy-completions choice: `text`, finish_reason and the token logprobs."""
    text = choice_text(choice, choice.get("text") if isinstance(choice, dict) else None, label, "text")
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens")
    tops = logprobs.get("top_logprobs") or [None] * len(tokens or ())
    return ChatCompletionChoice(
        message=ChatMessageAssistant(content=text),
        stop_reason=stop_reason(choice.get("finish_reason")),
        logprobs=tuple(
            logprob(token, value, (top or {}).items())
            for token, value, top in zip(tokens, logprobs.get("token_logprobs") or (), tops)
        ) if tokens is not None else None,
    )
