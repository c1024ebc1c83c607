"""`anthropic`: Claude through the Messages API on the anthropic SDK, directly, on AWS
Bedrock (`anthropic/bedrock/<model-id>`) or on Google Vertex AI (`anthropic/vertex/<model>`)."""

from __future__ import annotations

from typing import Any

import anthropic

from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput, ModelUsage, StopReason
from evalkit.providers.http_errors import MalformedResponseError, MissingCredentialsError
from evalkit.providers.sdk_transport import SDKModelAPI, SDKTransport
from evalkit.providers.turns import split_turns
from evalkit.secrets import excerpt, get_secret

DEFAULT_MAX_TOKENS = 4096
"""Sent when no max_tokens is set (the API requires one); every Claude model allows it."""

_RESET_HEADERS = ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset")
_STOP_REASONS: dict[str | None, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "content_filter",
}
_PARAMS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k"}
_UNSUPPORTED = ("seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs")
_AWS_SECRETS = {"aws_access_key": "AWS_ACCESS_KEY_ID", "aws_secret_key": "AWS_SECRET_ACCESS_KEY", "aws_session_token": "AWS_SESSION_TOKEN"}


class AnthropicAPI(SDKModelAPI):
    """Messages API over `anthropic.AsyncAnthropic`, `AsyncAnthropicBedrock` or `AsyncAnthropicVertex`.

    Direct: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL. Bedrock: AWS credentials and region
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, or a profile),
    ANTHROPIC_BEDROCK_BASE_URL. Vertex: ANTHROPIC_VERTEX_PROJECT_ID, ANTHROPIC_VERTEX_REGION,
    Google application-default credentials. Model args go to the client constructor unchanged.
    """

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        platform, _, rest = model_name.partition("/")
        if platform == "bedrock" and rest:
            self.provider, key_env, self.request_model = "anthropic/bedrock", None, rest
            client_class, settings = _bedrock_settings(base_url, api_key, model_args)
        elif platform == "vertex" and rest:
            self.provider, key_env, self.request_model = "anthropic/vertex", None, rest
            client_class, settings = _vertex_settings(base_url, model_args)
        else:
            self.provider, key_env, self.request_model = "anthropic", "ANTHROPIC_API_KEY", model_name
            api_key = api_key or get_secret("ANTHROPIC_API_KEY")
            if api_key is None and "auth_token" not in model_args:
                raise MissingCredentialsError("anthropic", "ANTHROPIC_API_KEY")
            client_class = anthropic.AsyncAnthropic
            settings = {"api_key": api_key, "base_url": base_url or get_secret("ANTHROPIC_BASE_URL"), "max_retries": 0}
        super().__init__(model_name, base_url=settings["base_url"], api_key=api_key, config=config, **model_args)
        self.transport = SDKTransport(
            anthropic, client_class, settings, model_args, provider=self.provider, model=self.request_model, key_env=key_env,
            reset_headers=_RESET_HEADERS, connections=config.max_connections or 0,
        )

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        data = await self.transport.post("/v1/messages", self._request(messages, config))
        content = data.get("content")
        if not isinstance(content, list):
            raise MalformedResponseError(f"{self.provider}: the reply has no 'content' list: {excerpt(str(data), 200)}")
        text = "".join(block.get("text") or "" for block in content if block.get("type") == "text")
        usage = data.get("usage") or {}
        input_tokens = sum(usage.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        output_tokens = usage.get("output_tokens") or 0
        return ModelOutput.from_text(
            data.get("model") or self.request_model,
            text,
            stop_reason=_STOP_REASONS.get(data.get("stop_reason"), "unknown"),
            usage=ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens) if usage else None,
        )

    def _request(self, messages: list[ChatMessage], config: GenerateConfig) -> dict[str, Any]:
        system, turns = split_turns(messages)
        body: dict[str, Any] = {
            "model": self.request_model,
            "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [{"role": role, "content": "\n\n".join(texts)} for role, texts in turns],
        }
        if system:
            body["system"] = "\n\n".join(system)
        for field, param in _PARAMS.items():
            value = getattr(config, field)
            if value is not None:
                body[param] = value
        if config.stop_seqs:
            body["stop_sequences"] = list(config.stop_seqs)
        for field in _UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        if config.num_choices is not None and config.num_choices > 1:
            warn_unsupported(self.provider, "num_choices", "one choice per request")
        return body


def _bedrock_settings(base_url: str | None, api_key: str | None, model_args: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """The `AsyncAnthropicBedrock` client class and its settings."""
    region = model_args.get("aws_region") or get_secret("AWS_REGION") or get_secret("AWS_DEFAULT_REGION")
    if region is None and "aws_profile" not in model_args:
        raise MissingCredentialsError("anthropic/bedrock", "AWS_REGION", "-M aws_region=...")
    settings: dict[str, Any] = {
        "aws_region": region, "base_url": base_url or get_secret("ANTHROPIC_BEDROCK_BASE_URL"), "max_retries": 0,
    }
    bearer = api_key or get_secret("AWS_BEARER_TOKEN_BEDROCK")
    if bearer:
        settings["api_key"] = bearer
    else:
        settings.update({arg: get_secret(env) for arg, env in _AWS_SECRETS.items()})
    return anthropic.AsyncAnthropicBedrock, settings


def _vertex_settings(base_url: str | None, model_args: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """The `AsyncAnthropicVertex` client class and its settings."""
    region = model_args.get("region") or get_secret("ANTHROPIC_VERTEX_REGION") or get_secret("CLOUD_ML_REGION")
    if region is None:
        raise MissingCredentialsError("anthropic/vertex", "ANTHROPIC_VERTEX_REGION", "-M region=...")
    settings: dict[str, Any] = {"region": region, "base_url": base_url or get_secret("ANTHROPIC_VERTEX_BASE_URL"), "max_retries": 0}
    project_id = get_secret("ANTHROPIC_VERTEX_PROJECT_ID")
    if project_id:
        settings["project_id"] = project_id
    return anthropic.AsyncAnthropicVertex, settings
