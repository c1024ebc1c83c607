"""`Sample`: one input to evaluate, with its target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.model.types import ChatMessage, input_text, message_to_dict


@dataclass(slots=True)
class Sample:
    """One dataset row.

    `input` is a prompt string or a list of chat messages; `target` the ideal answer(s);
    `choices` the options of a multiple-choice question; `id` is assigned (1, 2, ...) when
    missing.
    """

    input: str | list[ChatMessage]
    target: str | list[str] = ""
    choices: list[str] | None = None
    id: int | str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def input_text(self) -> str:
        """The input as text: the string, or the last user message's content."""
        return input_text(self.input)

    @property
    def targets(self) -> list[str]:
        """The target as a list of acceptable answers."""
        return [self.target] if isinstance(self.target, str) else list(self.target)

    def input_for_log(self) -> str | list[dict[str, str]]:
        """The input in its JSON form."""
        return self.input if isinstance(self.input, str) else [message_to_dict(m) for m in self.input]
