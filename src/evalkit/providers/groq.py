"""`groq`: Groq's chat completions on the official `groq` SDK (`AsyncGroq`).

Environment: GROQ_API_KEY, and GROQ_BASE_URL, the bare host as the SDK takes it (default
`https://api.groq.com`; the SDK's paths add `/openai/v1`). Every `-M` goes to the `AsyncGroq`
constructor (e.g. `-M default_headers=...`), except `extra_body` and `logit_bias` (into
every request body) and `extra_headers` (sent with every request). The SDK's own retries are
off: `Model` retries, honouring Retry-After and Groq's x-ratelimit-reset-* headers.

Messages, tools and settings take the chat-completions shape (openai/wire.py); Groq has no
top_k or logprobs, and refuses `n` other than 1 (a 400): those are dropped with a warning, so
`num_choices` > 1 gives one choice. The reply's `id`, `system_fingerprint`,
`created`, the usage timings (`queue_time`, `prompt_time`, `completion_time`, `total_time`)
and any `executed_tools` go to the output's metadata, as Inspect keeps them.
"""

from __future__ import annotations

from typing import Any

import groq

from evalkit.errors import ModelArgsError
from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput
from evalkit.providers.common.http_errors import MissingCredentialsError
from evalkit.providers.common.sdk_transport import SDKModelAPI, SDKTransport
from evalkit.providers.openai.api import BODY_ARGS, request_extras
from evalkit.providers.openai.wire import PARAMS, chat_messages, chat_output, output_params, request_params, tool_params
from evalkit.secrets import get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

API_KEY_ENV = "GROQ_API_KEY"
BASE_URL_ENV = "GROQ_BASE_URL"
DEFAULT_BASE_URL = "https://api.groq.com"
CHAT_PATH = "/openai/v1/chat/completions"
RESET_HEADERS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
UNSUPPORTED = ("top_k", "logprobs", "top_logprobs")
_PARAMS = {field: name for field, name in PARAMS.items() if field not in (*UNSUPPORTED, "num_choices")}
METADATA = ("id", "system_fingerprint", "created")
USAGE_TIMES = ("queue_time", "prompt_time", "completion_time", "total_time")


class GroqAPI(SDKModelAPI):
    """Chat completions over `groq.AsyncGroq`."""

    provider = "groq"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        base_url = (base_url or get_secret(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if base_url.endswith("/openai/v1"):
            raise ModelArgsError(f"{BASE_URL_ENV} is the bare host (e.g. {DEFAULT_BASE_URL}); the groq SDK adds "
                                 f"/openai/v1 itself (got {base_url})")
        api_key = api_key or get_secret(API_KEY_ENV)
        if not api_key:
            raise MissingCredentialsError(self.provider, API_KEY_ENV)
        self.body_args = request_extras(model_args, BODY_ARGS)
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        settings = {"api_key": api_key, "base_url": base_url, "max_retries": 0}
        self.transport = SDKTransport(
            groq, groq.AsyncGroq, settings, model_args, provider=self.provider, model=model_name, key_env=API_KEY_ENV,
            reset_headers=RESET_HEADERS, connections=config.max_connections or 0, http="httpx",
        )

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        body: dict[str, Any] = {"model": self.model_name, "messages": await chat_messages(input)}
        body.update(request_params(config, _PARAMS))
        body.update(tool_params(tools, tool_choice, config))
        body.update(output_params(config, self.provider))
        for field in UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        if (config.num_choices or 1) > 1:
            warn_unsupported(self.provider, "num_choices", "Groq accepts only n=1")
        data = await self.transport.post(CHAT_PATH, {**body, **self.body_args})
        output = chat_output(data, data.get("model") or self.model_name, label=self.provider)
        output.metadata = _metadata(data) or None
        return output


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    """What Groq's reply carries beyond OpenAI's: ids, the usage timings, server-side tool runs."""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    metadata = {name: data[name] for name in METADATA if data.get(name) is not None}
    metadata.update({name: usage[name] for name in USAGE_TIMES if usage.get(name) is not None})
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if isinstance(message, dict) and message.get("executed_tools"):
        metadata["executed_tools"] = message["executed_tools"]
    return metadata
