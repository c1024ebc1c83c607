"""The OpenAI chat-completions wire shape, for every provider that speaks it: the request for
messages and a GenerateConfig, and the reply parsed into a ModelOutput."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
    message_to_dict,
)
from evalkit.providers.http_errors import MalformedResponseError
from evalkit.secrets import excerpt

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

FINISH_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "max_tokens",
    "content_filter": "content_filter",
    "tool_calls": "stop",
    "function_call": "stop",
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


def chat_request(model: str, messages: list[ChatMessage], config: GenerateConfig) -> dict[str, Any]:
    """The chat-completions request for `messages` with the set `config` fields."""
    return {"model": model, "messages": [message_to_dict(m) for m in messages], **request_params(config)}


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
    """One chat choice: `message.content` (else `message.refusal`), finish_reason, logprobs."""
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not content and isinstance(message, dict) and isinstance(message.get("refusal"), str):
        content = message["refusal"]
    text = choice_text(choice, content, label)
    logprobs = (choice.get("logprobs") or {}).get("content")
    return ChatCompletionChoice(
        message=ChatMessageAssistant(content=text),
        stop_reason=stop_reason(choice.get("finish_reason")),
        logprobs=tuple(
            logprob(t["token"], t["logprob"], ((a["token"], a["logprob"]) for a in t.get("top_logprobs") or ()))
            for t in logprobs
        ) if isinstance(logprobs, list) else None,
    )


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
    """The ModelUsage for an OpenAI `usage` object; None when there is none."""
    if not isinstance(data, dict) or not data:
        return None
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    return ModelUsage(prompt, completion, int(data.get("total_tokens") or prompt + completion))


def _snippet(data: Any) -> str:
    """The start of `data` as text, for error messages."""
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    return excerpt(text)
