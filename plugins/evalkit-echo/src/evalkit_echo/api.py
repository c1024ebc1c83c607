"""The `echo` provider: replies with the last user message."""

from __future__ import annotations

from typing import Any, Literal

from evalkit import ChatMessage, GenerateConfig, ModelAPI, ModelOutput, ModelUsage

Mode = Literal["plain", "upper", "lower", "reverse"]
_MODES = {"plain": str, "upper": str.upper, "lower": str.lower, "reverse": lambda s: s[::-1]}


class EchoAPI(ModelAPI):
    """Echoes the last user message; `-M mode=` transforms it."""

    def __init__(self, model_name: str, *, mode: Mode = "plain", config: GenerateConfig = GenerateConfig(), **kwargs: Any) -> None:
        if mode not in _MODES:
            raise ValueError(f"echo: mode must be one of {', '.join(_MODES)} (got {mode!r})")
        super().__init__(model_name, config=config, **kwargs)
        self.transform = _MODES[mode]

    def max_connections(self) -> int:
        return 64

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        text = self.transform(prompt)
        if config.max_tokens is not None:
            text = text[: config.max_tokens]
        usage = ModelUsage(len(prompt), len(text), len(prompt) + len(text))
        return ModelOutput.from_text(f"echo/{self.model_name}", text, usage=usage)
