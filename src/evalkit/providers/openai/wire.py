"""The OpenAI chat-completions wire shape, for every provider that speaks it: messages, tools
and a GenerateConfig as a request, and the reply parsed into a ModelOutput."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from evalkit.errors import ImagesUnsupportedError
from evalkit.model.api import warn_unsupported
from evalkit.model.content import Content, ContentImage, ContentReasoning, ContentText, has_image, image_data_uri
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageTool,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
)
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.secrets import excerpt
from evalkit.tool.types import ToolCall, ToolChoice, ToolFunction, ToolInfo, parse_tool_arguments

PARAMS: dict[str, str] = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop_seqs": "stop",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "num_choices": "n",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
}
"""GenerateConfig field -> OpenAI chat-completions parameter (`top_k` is an extension)."""

OUTPUT_PARAMS: dict[str, str] = {"reasoning_effort": "reasoning_effort", "response_schema": "response_format"}
"""GenerateConfig field -> the chat-completions parameter shaping what the model returns."""

FINISH_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "max_tokens",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
"""OpenAI finish_reason -> StopReason; any other is "unknown"."""

ChoiceParser = Callable[[Any, str], ChatCompletionChoice]


def request_params(config: GenerateConfig, params: Mapping[str, str] = PARAMS) -> dict[str, Any]:
    """The request parameters, named by `params`, for the `config` fields that are set (an
    empty stop list counts as unset)."""
    request: dict[str, Any] = {}
    for field, name in params.items():
        value = getattr(config, field)
        if isinstance(value, tuple):
            if value:
                request[name] = list(value)
        elif value is not None:
            request[name] = value
    return request


async def chat_request(
    model: str, messages: list[ChatMessage], config: GenerateConfig, tools: Sequence[ToolInfo] = (),
    tool_choice: ToolChoice | None = None, *, provider: str = "",
) -> dict[str, Any]:
    """The chat-completions request for `messages` offering `tools`, with the set `config`
    fields; `provider` names who warns about what it cannot send."""
    return {"model": model, "messages": await chat_messages(messages), **request_params(config),
            **tool_params(tools, tool_choice, config), **output_params(config, provider or model)}


async def chat_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Messages in the chat-completions form: images as `image_url` parts (files read into
    data URIs), tool calls and tool results in their own fields, reasoning left out. Tool
    messages take text only, so the images of a run of tool results follow it in one user
    message (as Inspect does); an image in a system message is an ImagesUnsupportedError."""
    wire: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    for message in messages:
        if tool_images and not isinstance(message, ChatMessageTool):
            wire.append({"role": "user", "content": tool_images})
            tool_images = []
        wire.append(await chat_message(message))
        if isinstance(message, ChatMessageTool) and message.error is None and has_image(message.content):
            tool_images += [await _content_part(p) for p in message.content if isinstance(p, ContentImage)]
    if tool_images:
        wire.append({"role": "user", "content": tool_images})
    return wire


async def chat_message(message: ChatMessage) -> dict[str, Any]:
    """One message in the chat-completions form (a tool result's text only)."""
    if isinstance(message, ChatMessageTool):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": tool_result_text(message)}
    if isinstance(message, ChatMessageAssistant):
        data: dict[str, Any] = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            data["tool_calls"] = [_tool_call_param(call) for call in message.tool_calls]
        return data
    if message.role == "system":
        return {"role": "system", "content": text_prompt(message, "a chat-completions system message",
                                                         "move the image to a user message")}
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.text}
    return {"role": message.role, "content": [await _content_part(p) for p in message.content
                                              if not isinstance(p, ContentReasoning)]}


def tool_result_text(message: ChatMessageTool) -> str:
    """What the model is shown for a tool's result: its text, or "Error: ..." when it failed."""
    return f"Error: {message.error.message}" if message.error is not None else message.text


async def _content_part(part: Content) -> dict[str, Any]:
    if isinstance(part, ContentImage):
        return {"type": "image_url", "image_url": {"url": await image_data_uri(part.image), "detail": part.detail}}
    assert isinstance(part, ContentText)
    return {"type": "text", "text": part.text}


def _tool_call_param(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.function, "arguments": json.dumps(call.arguments)}}


def text_prompt(message: ChatMessage, label: str, fix: str = "use a model and API that accept images") -> str:
    """The text of a message for an API that takes text only; an image in it is an
    ImagesUnsupportedError naming `label` and saying how to `fix` it."""
    if has_image(message.content):
        raise ImagesUnsupportedError(f"{label} takes text only, but a {message.role} message holds an image; {fix}")
    return message.text


def tool_params(tools: Sequence[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls`; nothing when no tools are offered."""
    if not tools:
        return {}
    params: dict[str, Any] = {"tools": [function_tool(t) for t in tools]}
    if tool_choice is not None:
        params["tool_choice"] = _tool_choice(tool_choice)
    if config.parallel_tool_calls is not None:
        params["parallel_tool_calls"] = config.parallel_tool_calls
    return params


def function_tool(tool: ToolInfo) -> dict[str, Any]:
    """A tool in the chat-completions function shape (also what HF chat templates take)."""
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": tool.parameters}}


def _tool_choice(choice: ToolChoice) -> Any:
    if isinstance(choice, ToolFunction):
        return {"type": "function", "function": {"name": choice.name}}
    return "required" if choice == "any" else choice


def output_params(config: GenerateConfig, provider: str) -> dict[str, Any]:
    """`reasoning_effort` and `response_format` (a JSON schema) when set; a thinking budget
    (`reasoning_tokens`) has no chat-completions parameter, so `provider` warns once."""
    params: dict[str, Any] = {}
    if config.reasoning_effort is not None:
        params["reasoning_effort"] = config.reasoning_effort
    schema = config.response_schema
    if schema is not None:
        json_schema: dict[str, Any] = {"name": schema.name, "schema": schema.json_schema}
        if schema.description is not None:
            json_schema["description"] = schema.description
        if schema.strict is not None:
            json_schema["strict"] = schema.strict
        params["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    if config.reasoning_tokens is not None:
        warn_unsupported(provider, "reasoning_tokens", "the chat-completions API takes reasoning_effort instead")
    return params


def chat_output(data: Any, model: str, *, label: str | None = None, choice: ChoiceParser | None = None) -> ModelOutput:
    """The ModelOutput, named `model`, for a chat-completion-shaped reply `data` (choices and
    usage); each choice is read by `choice` (default `chat_choice`) and errors name `label`
    (default `model`)."""
    label = label or model
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError(f"{label}: response has no choices: {_snippet(data)}")
    parse = choice or chat_choice
    return ModelOutput(model=model, choices=[parse(c, label) for c in choices], usage=usage(data.get("usage")))


def chat_choice(choice: Any, label: str) -> ChatCompletionChoice:
    """One chat choice: `message.content` (else `message.refusal`), the reasoning some servers
    return (`reasoning_content` or `reasoning`), tool calls, finish_reason and logprobs."""
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    calls = tool_calls(message.get("tool_calls"))
    content = message.get("content")
    if not content and isinstance(message.get("refusal"), str):
        content = message["refusal"]
    text = "" if content is None and calls else choice_text(choice, content, label)
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    parts: str | list[Content] = [ContentReasoning(reasoning), ContentText(text)] if isinstance(reasoning, str) else text
    reason = stop_reason(choice.get("finish_reason"))
    logprobs = (choice.get("logprobs") or {}).get("content")
    return ChatCompletionChoice(
        message=ChatMessageAssistant(content=parts, tool_calls=calls),
        stop_reason="tool_calls" if calls and reason in ("stop", "unknown") else reason,
        logprobs=tuple(
            logprob(t["token"], t["logprob"], ((a["token"], a["logprob"]) for a in t.get("top_logprobs") or ()))
            for t in logprobs
        ) if isinstance(logprobs, list) else None,
    )


def tool_calls(data: Any) -> list[ToolCall] | None:
    """The ToolCalls of a reply's `message.tool_calls` (None when there are none); arguments
    that are not a JSON object become the call's parse_error."""
    if not isinstance(data, list) or not data:
        return None
    calls = []
    for index, call in enumerate(c for c in data if isinstance(c, dict)):
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        raw = function.get("arguments")
        arguments, error = parse_tool_arguments(raw if raw is None or isinstance(raw, str) else json.dumps(raw))
        calls.append(ToolCall(id=str(call.get("id") or f"call_{index}"), function=str(function.get("name") or ""),
                              arguments=arguments, parse_error=error))
    return calls or None


def choice_text(choice: Any, text: Any, label: str, field: str = "message.content") -> str:
    """A choice's `text`, or "" when it is null and a finish_reason explains why (e.g.
    content_filter); anything else is a MalformedResponseError naming `field`."""
    if isinstance(text, str):
        return text
    if text is None and isinstance(choice, dict) and choice.get("finish_reason"):
        return ""
    raise MalformedResponseError(f"{label}: choice has no {field} text: {_snippet(choice)}")


def stop_reason(finish_reason: Any) -> StopReason:
    """The StopReason for an OpenAI finish_reason."""
    return FINISH_REASONS.get(finish_reason, "unknown") if isinstance(finish_reason, str) else "unknown"


def logprob(token: str, value: float, top: Iterable[tuple[str, float]]) -> Logprob:
    """A token's Logprob with its top alternatives as (token, logprob) pairs."""
    return Logprob(token, float(value), tuple(TopLogprob(t, float(lp)) for t, lp in top))


def usage(data: Any) -> ModelUsage | None:
    """The ModelUsage for an OpenAI `usage` object (reasoning tokens from
    `completion_tokens_details`); None when there is none."""
    if not isinstance(data, dict) or not data:
        return None
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    details = data.get("completion_tokens_details")
    reasoning = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
    return ModelUsage(prompt, completion, int(data.get("total_tokens") or prompt + completion), reasoning)


def _snippet(data: Any) -> str:
    """The start of `data` as text, for error messages."""
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    return excerpt(text)
