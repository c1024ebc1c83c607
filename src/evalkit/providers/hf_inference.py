"""`hf-inference`: Hugging Face Inference, dedicated Inference Endpoints and TGI/TEI servers
through huggingface_hub's `AsyncInferenceClient`.

Where requests go:
- `hf-inference/<hub-id>`: the Hugging Face router's hf-inference provider
  (`https://router.huggingface.co/hf-inference/models/<hub-id>`); needs HF_TOKEN (or a token
  saved by `hf auth login`).
- `hf-inference/<https URL>`: that Inference Endpoint or TGI/TEI server.
- `hf-inference/<name>` with `base_url=` (`-M base_url=...`) or HF_INFERENCE_BASE_URL: that
  server, `<name>` sent as the request's model.
Chat goes to `<url>/v1/chat/completions` (as the client appends it); embeddings to the URL
itself (the root route of TEI and of Inference Endpoints), or for a hub id to its
`/pipeline/feature-extraction` route. HF_TOKEN (or `-M api_key=`/`-M token=`) is sent as a
bearer token wherever the request goes; a token only saved by `hf auth login` (huggingface_hub's
`get_token()`) is sent only to Hugging Face's own https hosts (the router, `*.huggingface.co`,
`*.hf.space`, `*.endpoints.huggingface.cloud`), never to another server.
huggingface_hub's offline mode (HF_HUB_OFFLINE=1) blocks these requests too: it fails in one
line. Every `-M` goes to `AsyncInferenceClient` unchanged (e.g. `-M headers={X-Test: 1}`,
`-M bill_to=my-org`).

Chat: the chat-completions messages, tools and tool_choice (any -> required, a ToolFunction
-> {"function": {"name": ...}}), max_tokens, temperature, top_p, seed, stop, frequency and
presence penalty, num_choices (n), logprobs, top_logprobs and response_schema (json_schema).
finish_reason `eos_token` and `stop_sequence` (older TGI) count as stop; usage from `usage`.
Embeddings: one request for up to 32 texts (TEI's default max_client_batch_size); a
per-token result (raw transformers feature extraction) is mean-pooled over its tokens when the
texts' token counts agree (huggingface_hub reads the reply as one numpy array, so per-token
vectors of different lengths fail in one line: use a pooled endpoint).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import AsyncInferenceClient, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

from evalkit.errors import EvalkitError
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput
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
from evalkit.providers.openai.wire import chat_messages, chat_output, function_tool, output_params, request_params
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolChoice, ToolFunction, ToolInfo

ROUTER = constants.INFERENCE_PROXY_TEMPLATE.format(provider="hf-inference")
"""Where `hf-inference/<hub-id>` goes: the router's hf-inference provider."""

HF_HOSTS = ("huggingface.co", "hf.space", "endpoints.huggingface.cloud")
"""Domains whose https hosts may receive the token saved by `hf auth login`."""

EMBED_BATCH_SIZE = 32
"""Texts per embeddings request: TEI's default `max_client_batch_size`."""

_PARAMS = {
    "max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop_seqs": "stop",
    "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty", "num_choices": "n",
    "logprobs": "logprobs", "top_logprobs": "top_logprobs",
}
_FINISH_ALIASES = {"eos_token": "stop", "stop_sequence": "stop"}
_UNSUPPORTED = ("top_k", "reasoning_effort", "reasoning_tokens")


class HubOfflineError(EvalkitError):
    """huggingface_hub's offline mode (HF_HUB_OFFLINE) blocks every request it would make."""


class HFInferenceAPI(ModelAPI):
    """Chat and embeddings through `AsyncInferenceClient` (see the module docstring)."""

    provider = "hf-inference"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        is_url = model_name.startswith(("http://", "https://"))
        base_url = model_name if is_url else base_url or get_secret("HF_INFERENCE_BASE_URL")
        token = api_key or model_args.pop("token", None) or get_secret("HF_TOKEN")
        if not token and (base_url is None or is_hf_host(base_url)):
            token = get_token()  # the saved login: for Hugging Face's hosts only
        if base_url is None and not token:
            raise MissingCredentialsError(self.provider, "HF_TOKEN", "HF_INFERENCE_BASE_URL (a dedicated endpoint)")
        super().__init__(model_name, base_url=base_url, api_key=token, config=config, **model_args)
        self.request_model = None if is_url else model_name
        self.chat_url = (base_url or f"{ROUTER}/models/{model_name}").rstrip("/")
        self.embed_url = base_url or f"{ROUTER}/models/{model_name}/pipeline/feature-extraction"
        self._client = PerLoop(self._new_client, initial=self._new_client())  # made now, so a bad -M fails at once

    def _new_client(self) -> AsyncInferenceClient:
        args = dict(self.model_args)
        if not self.api_key:  # huggingface_hub would send the saved token itself: a None header drops it
            args["headers"] = {"authorization": None, **(args.get("headers") or {})}
        return AsyncInferenceClient(token=self.api_key or None, **args)

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        data = await self._call(self._client.get().chat_completion(
            await chat_messages(input), **self.chat_params(tools, tool_choice, config)))
        for choice in data.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason") in _FINISH_ALIASES:
                choice["finish_reason"] = _FINISH_ALIASES[choice["finish_reason"]]
        return chat_output(data, data.get("model") or self.model_name, label=self.label)

    def chat_params(self, tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig) -> dict[str, Any]:
        """The keyword arguments of `chat_completion` besides the messages."""
        params: dict[str, Any] = {"model": self.chat_url, **request_params(config, _PARAMS)}
        if self.request_model is not None:  # the client would send "dummy" for a URL
            params["extra_body"] = {"model": self.request_model}
        if tools:
            params["tools"] = [function_tool(t) for t in tools]
            if tool_choice is not None:
                params["tool_choice"] = _tool_choice(tool_choice)
        if config.parallel_tool_calls is False:
            warn_unsupported(self.provider, "parallel_tool_calls", "TGI has no switch for parallel tool calls")
        for field in _UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        if config.response_schema is not None:
            params["response_format"] = output_params(config, self.provider)["response_format"]
        return params

    async def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            array = await self._call(self._client.get().feature_extraction(texts, model=self.embed_url))
        except ValueError as error:  # numpy refused per-token vectors of different lengths
            if "inhomogeneous" not in str(error):
                raise
            raise MalformedResponseError(
                f"{self.label}: the endpoint returned per-token vectors of different lengths, which huggingface_hub "
                f"cannot read as one array ({str(error).splitlines()[0]}); use a pooled endpoint (TEI, or a "
                "sentence-transformers model)") from None
        if array.ndim == 3:  # per-token vectors: mean-pool over the tokens
            array = array.mean(axis=1)
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise MalformedResponseError(f"{self.label}: expected one vector per text, got an array of shape {array.shape}")
        return array.astype(float).tolist()

    def embed_batch_size(self) -> int:
        return EMBED_BATCH_SIZE

    async def _call(self, request: Any) -> Any:
        """Await a client call, turning what a retry cannot fix into a clear error."""
        try:
            return await request
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            mapped = request_error(self.provider, status, _detail(error), model=self.model_name, key_env="HF_TOKEN")
            if mapped is None:
                raise
            raise mapped from error
        except OfflineModeIsEnabled:
            raise HubOfflineError(f"{self.label}: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, and huggingface_hub "
                                  "sends no request in offline mode; unset it to call an inference endpoint") from None
        except json.JSONDecodeError as error:  # a 2xx body that is not JSON
            raise MalformedResponseError(f"{self.label}: the reply is not JSON: {error}") from None

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, HfHubHTTPError):
            return error.response is not None and is_retryable_status(error.response.status_code)
        return isinstance(error, (InferenceTimeoutError, httpx2.TransportError))

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code == 429

    def retry_after(self, error: BaseException) -> float | None:
        response = getattr(error, "response", None) if isinstance(error, HfHubHTTPError) else None
        return retry_after_from_headers(response.headers) if response is not None else None

    async def aclose(self) -> None:
        client = self._client.take()
        if client is not None:
            await client.close()


def is_hf_host(url: str) -> bool:
    """Whether `url` is https on a Hugging Face host (a domain of HF_HOSTS or a subdomain)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and any(host == domain or host.endswith(f".{domain}") for domain in HF_HOSTS)


def _tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, ToolFunction):
        return {"function": {"name": choice.name}}
    return "required" if choice == "any" else choice


def _detail(error: HfHubHTTPError) -> str:
    """The server's own message (TGI's `{"error": ...}`), else the response text."""
    try:
        body = error.response.json()
    except ValueError:
        body = None
    return body_detail(body) or excerpt(error.response.text or str(error), 200)
