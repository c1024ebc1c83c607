"""`anthropic`: Claude through the Messages API on the anthropic SDK, directly, on AWS
Bedrock (`anthropic/bedrock/<model-id>`) or on Google Vertex AI (`anthropic/vertex/<model>`)."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import orjson

from evalkit.errors import BatchUnsupportedError
from evalkit.model.api import warn_unsupported
from evalkit.model.content import Content, ContentImage, ContentReasoning, ContentText, image_bytes, is_url
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
    ReasoningEffort,
    StopReason,
)
from evalkit.providers.batch.anthropic import MessageBatches
from evalkit.model.batch.protocol import BatchProtocol
from evalkit.providers.common.http_errors import MalformedResponseError, MissingCredentialsError
from evalkit.providers.common.sdk_transport import SDKModelAPI, SDKTransport
from evalkit.providers.common.turns import Turn, merge_turns, system_text, unforced
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolCall, ToolChoice, ToolFunction, ToolInfo, parse_tool_arguments

NO_CONTENT = "(no content)"
"""Sent for a message or tool result with no content, as the API refuses empty turns (Inspect
sends the same placeholder)."""

DEFAULT_MAX_TOKENS = 4096
"""Sent when no max_tokens is set (the API requires one); every Claude model allows it.
With extended thinking the thinking budget is added to max_tokens (or to this default), as
the API counts thinking in max_tokens and requires it to exceed the budget."""

THINKING_BUDGETS: dict[ReasoningEffort, int] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
"""The extended-thinking budget each reasoning_effort asks for (1024 is the API's minimum);
reasoning_tokens, when set, is the budget instead."""

_RESET_HEADERS = ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset")
_STOP_REASONS: dict[str | None, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
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

    Tools, tool results (`is_error` for errors), images and extended thinking are mapped the
    same way on all three: reasoning_tokens (or reasoning_effort, see THINKING_BUDGETS) turns
    thinking on, drops temperature, top_p and top_k with a warning, and adds the budget to
    max_tokens; thinking comes back as ContentReasoning and is sent back with its signature.
    With thinking on, a forced tool_choice ("any" or a ToolFunction) is sent as auto with a
    warning (the API refuses forced tool use with thinking). Empty messages and tool results go
    as NO_CONTENT; images in system messages fail in one line (`system` is text only).
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
        self._batches: MessageBatches | None = None

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        body = await self.batch_body(input, tools, tool_choice, config)
        return self.batch_output(await self.transport.post("/v1/messages", body))

    def batch_protocol(self) -> BatchProtocol:
        """Message Batches on this client (the Anthropic API only: Bedrock and Vertex have none here)."""
        if self.provider != "anthropic":
            raise BatchUnsupportedError(f"{self.provider}: batch mode is not supported; run without --batch")
        if self._batches is None:
            self._batches = MessageBatches(self.transport)
        return self._batches

    def batch_output(self, data: dict[str, Any]) -> ModelOutput:
        """The ModelOutput for a Messages API reply (a Message)."""
        content = data.get("content")
        if not isinstance(content, list):
            raise MalformedResponseError(f"{self.provider}: the reply has no 'content' list: {excerpt(str(data), 200)}")
        usage = data.get("usage") or {}
        input_tokens = sum(usage.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        output_tokens = usage.get("output_tokens") or 0
        choice = ChatCompletionChoice(_assistant_message(content), _STOP_REASONS.get(data.get("stop_reason"), "unknown"))
        return ModelOutput(
            data.get("model") or self.request_model, [choice],
            usage=ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens) if usage else None,
        )

    async def batch_body(
        self, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """The Messages API request body (`params` of a batch request)."""
        system, turns = await _conversation(messages, self.provider)
        body: dict[str, Any] = {
            "model": self.request_model,
            "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [{"role": role, "content": content} for role, content in turns],
        }
        if system:
            body["system"] = "\n\n".join(system)
        budget = _thinking_budget(config)
        if budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            body["max_tokens"] += budget
        for field, param in _PARAMS.items():
            value = getattr(config, field)
            if value is None:
                continue
            if budget is None:
                body[param] = value
            else:
                warn_unsupported(self.provider, field, "not allowed with extended thinking")
        if config.stop_seqs:
            body["stop_sequences"] = list(config.stop_seqs)
        if tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
            choice = _tool_choice(unforced(tool_choice, budget, self.provider), config.parallel_tool_calls)
            if choice is not None:
                body["tool_choice"] = choice
        self._warn_unsupported(config)
        return body

    def _warn_unsupported(self, config: GenerateConfig) -> None:
        for field in _UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        if config.num_choices is not None and config.num_choices > 1:
            warn_unsupported(self.provider, "num_choices", "one choice per request")
        if config.response_schema is not None:
            warn_unsupported(self.provider, "response_schema", "the Messages API has no structured output")


def _thinking_budget(config: GenerateConfig) -> int | None:
    """The extended-thinking budget: reasoning_tokens, else reasoning_effort's budget."""
    if config.reasoning_tokens is not None:
        return config.reasoning_tokens
    return None if config.reasoning_effort is None else THINKING_BUDGETS[config.reasoning_effort]


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """The Messages API `tool_choice` (None: the API's default, auto with parallel calls)."""
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, ToolFunction):
        wire: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice == "any":
        wire = {"type": "any"}
    elif choice == "auto" or parallel is False:
        wire = {"type": "auto"}
    else:
        return None
    if parallel is False:
        wire["disable_parallel_tool_use"] = True
    return wire


async def _conversation(messages: list[ChatMessage], provider: str) -> tuple[list[str], list[Turn]]:
    """The system prompts' texts, and the other messages as alternating Messages API turns
    (tool results go in a user turn, consecutive ones merged and the results first, as the API
    requires; empty content is sent as NO_CONTENT)."""
    system: list[str] = []
    turns: list[Turn] = []
    for message in messages:
        if isinstance(message, ChatMessageSystem):
            system.append(system_text(message, provider, "the Messages API `system`"))
        elif isinstance(message, ChatMessageTool):
            turns.append(("user", [await _tool_result(message)]))
        elif isinstance(message, ChatMessageAssistant) and message.tool_calls:
            calls = [{"type": "tool_use", "id": c.id, "name": c.function, "input": c.arguments} for c in message.tool_calls]
            turns.append(("assistant", [*await _blocks(message.content), *calls]))
        else:
            turns.append((message.role, await _content(message.content)))
    return system, [(role, _results_first(content)) for role, content in merge_turns(turns, _text)]


async def _tool_result(message: ChatMessageTool) -> dict[str, Any]:
    """A `tool_result` block: the tool's output, or its error flagged with is_error."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if message.error is not None:
        return {**block, "content": message.error.message or NO_CONTENT, "is_error": True}
    return {**block, "content": await _content(message.content)}


async def _content(content: str | list[Content]) -> str | list[dict[str, Any]]:
    """Message content as the API takes it: a string, or blocks; NO_CONTENT when empty."""
    if isinstance(content, str):
        return content if content.strip() else NO_CONTENT
    return await _blocks(content) or NO_CONTENT


def _results_first(content: str | list[Any]) -> str | list[Any]:
    """A turn's blocks with its tool_result blocks first, as the API requires of a user turn."""
    if isinstance(content, str):
        return content
    return sorted(content, key=lambda block: block.get("type") != "tool_result")


async def _blocks(content: str | list[Content]) -> list[dict[str, Any]]:
    """Message content as Messages API blocks (blank text left out, as the API refuses it).
    Reasoning goes back unchanged with its signature; reasoning without one (from another
    provider) is left out, as the API accepts only its own signed thinking."""
    if isinstance(content, str):
        return [_text(content)] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ContentText) and part.text.strip():
            blocks.append(_text(part.text))
        elif isinstance(part, ContentImage):
            blocks.append(await _image(part.image))
        elif isinstance(part, ContentReasoning) and part.redacted:
            blocks.append({"type": "redacted_thinking", "data": part.reasoning})
        elif isinstance(part, ContentReasoning) and part.signature is not None:
            blocks.append({"type": "thinking", "thinking": part.reasoning, "signature": part.signature})
    return blocks


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


async def _image(image: str) -> dict[str, Any]:
    """An image block: a URL as is (the API fetches it), a file or data URI as base64."""
    if is_url(image):
        return {"type": "image", "source": {"type": "url", "url": image}}
    mime, data = await image_bytes(image)
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode()}}


def _assistant_message(blocks: list[Any]) -> ChatMessageAssistant:
    """The reply's blocks as a message: its text (one string when there is no reasoning),
    thinking as ContentReasoning, tool_use blocks as tool calls."""
    reasoning: list[Content] = []
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(ContentReasoning(block.get("thinking") or "", signature=block.get("signature")))
        elif kind == "redacted_thinking":
            reasoning.append(ContentReasoning(block.get("data") or "", redacted=True))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    text = "".join(texts)
    content: str | list[Content] = [*reasoning, *([ContentText(text)] if text else [])] if reasoning else text
    return ChatMessageAssistant(content, tool_calls=calls or None)


def _tool_call(block: dict[str, Any]) -> ToolCall:
    """A `tool_use` block as a ToolCall (its input is already a JSON object)."""
    call_id, name, arguments = str(block.get("id") or ""), str(block.get("name") or ""), block.get("input")
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments)
    parsed, error = parse_tool_arguments(arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode())
    return ToolCall(call_id, name, parsed, parse_error=error)


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
