"""`mockllm`: a deterministic, offline model for tests and examples."""

from __future__ import annotations

import re
from typing import Any

import anyio

from evalkit.model.api import ModelAPI
from evalkit.model.content import Content, ContentReasoning, ContentText
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
    StopReason,
    input_text,
)
from evalkit.tool.types import ToolCall, ToolChoice, ToolInfo, parse_tool_arguments

_ANSWER = re.compile(r"ANSWER:\s*([^\n]*)")


class MockLLMError(RuntimeError):
    """Raised on purpose when a prompt contains the `error_on` text."""


class MockLLM(ModelAPI):
    """Replies deterministically from the last user message.

    A message containing `ANSWER: X` gets exactly `X`; anything else gets `default_output`.
    Model args: `default_output` (str), `outputs` (list cycled in call order, overrides the
    rule above), `error_on` (a substring that makes the call raise), `latency` (seconds).
    An entry of `outputs` is a reply's text, or a scripted turn
    `{"content": "...", "reasoning": "...", "tool_calls": [{"function": "add", "arguments": {"x": 1}}]}`
    (arguments given as a string are parsed as JSON, as a provider would).
    Usage counts whitespace-separated words.
    """

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        default_output: str = "Default output from mockllm",
        outputs: list[str | dict[str, Any]] | None = None,
        error_on: str | None = None,
        latency: float = 0.0,
        **model_args: Any,
    ) -> None:
        if model_args:
            raise TypeError(f"mockllm got unexpected keyword argument(s): {', '.join(sorted(model_args))}")
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config)
        self.default_output = default_output
        self.outputs = list(outputs) if outputs else None
        self.error_on = error_on
        self.latency = float(latency)
        self.calls = 0

    def max_connections(self) -> int:
        return 256

    async def generate(
        self, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        prompt = input_text(messages)
        if self.error_on and self.error_on in prompt:
            raise MockLLMError(f"mockllm was asked to fail on {self.error_on!r}")
        if self.latency:
            await anyio.sleep(self.latency)
        if self.outputs:
            scripted = self.outputs[self.calls % len(self.outputs)]
        else:
            found = _ANSWER.search(prompt)
            scripted = found.group(1).strip() if found else self.default_output
        self.calls += 1
        turn = scripted if isinstance(scripted, dict) else {"content": str(scripted)}
        text = str(turn.get("content", ""))
        stop_reason: StopReason = "stop"
        if config.max_tokens is not None and len(text.split()) > config.max_tokens:
            text = " ".join(text.split()[: config.max_tokens])
            stop_reason = "max_tokens"
        calls = [self._tool_call(index, call) for index, call in enumerate(turn.get("tool_calls") or [])]
        content: str | list[Content] = [ContentReasoning(turn["reasoning"]), ContentText(text)] if turn.get("reasoning") else text
        input_tokens = sum(len(m.text.split()) for m in messages)
        output_tokens = len(text.split())
        usage = ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens)
        message = ChatMessageAssistant(content=content, tool_calls=calls or None)
        choice = ChatCompletionChoice(message=message, stop_reason="tool_calls" if calls else stop_reason)
        return ModelOutput(model=f"mockllm/{self.model_name}", choices=[choice], usage=usage)

    def _tool_call(self, index: int, call: dict[str, Any]) -> ToolCall:
        arguments = call.get("arguments") or {}
        parsed, error = parse_tool_arguments(arguments) if isinstance(arguments, str) else (dict(arguments), None)
        return ToolCall(id=str(call.get("id") or f"call_{self.calls}_{index}"), function=str(call.get("function", "")),
                        arguments=parsed, parse_error=error)
