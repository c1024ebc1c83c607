"""`TaskState`: what a sample's solvers read and change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalkit.model.content import with_text
from evalkit.model.types import ChatMessage, ChatMessageUser, ModelOutput, input_text
from evalkit.scorer.score import Target
from evalkit.tool.definition import Tool, ToolDef
from evalkit.tool.types import ToolChoice


@dataclass(slots=True)
class TaskState:
    """The conversation so far for one sample in one epoch, and the latest model output."""

    model: str
    sample_id: int | str
    epoch: int
    input: str | list[ChatMessage]
    messages: list[ChatMessage]
    target: Target
    choices: list[str] | None = None
    """This sample's own copy of the options, in the order shown to the model."""
    choice_positions: list[int] | None = None
    """Where each option of `choices` stands in the dataset's list, set by a solver that
    reorders them (`multiple_choice(shuffle=True)`); None: the dataset's order."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """A copy of the sample's metadata that solvers may change; logged as it ends."""
    output: ModelOutput | None = None
    completed: bool = False
    tools: list[Tool | ToolDef] = field(default_factory=list)
    """Tools offered to the model by `generate()` (set with `use_tools`)."""
    tool_choice: ToolChoice | None = None
    message_limit: int | None = None
    """The most messages this sample's conversation may reach (None: no limit)."""
    token_limit: int | None = None
    """The most tokens (input and output, every model call) this sample may use."""
    token_usage: int = 0
    """Tokens the sample's model calls have used so far."""

    @property
    def input_text(self) -> str:
        """The sample's input as text (the last user message for chat input)."""
        return input_text(self.input)

    @property
    def user_prompt(self) -> ChatMessageUser:
        """The last user message (solvers that rewrite the prompt replace it)."""
        for message in reversed(self.messages):
            if isinstance(message, ChatMessageUser):
                return message
        raise ValueError("the conversation has no user message")

    def replace_user_prompt(self, text: str) -> None:
        """Replace the last user message's text."""
        for index in range(len(self.messages) - 1, -1, -1):
            if isinstance(self.messages[index], ChatMessageUser):
                self.messages[index] = ChatMessageUser(content=with_text(self.messages[index].content, text))
                return
        self.messages.append(ChatMessageUser(content=text))

