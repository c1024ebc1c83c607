"""Conversations for APIs that take the system prompt apart and want alternating turns
(anthropic, bedrock, google), and Claude's rule on tool choice with extended thinking."""

from __future__ import annotations

from typing import Any, Callable

from evalkit.errors import ImagesUnsupportedError
from evalkit.model.api import warn_unsupported
from evalkit.model.content import has_image
from evalkit.model.types import ChatMessage
from evalkit.tool.types import ToolChoice, ToolFunction

Turn = tuple[str, str | list[Any]]
"""A turn: its role, and its content as a string or a list of the API's blocks."""


def system_text(message: ChatMessage, provider: str, field: str) -> str:
    """A system message's text for an API whose system prompt (`field`) is text only; an
    image in it is an ImagesUnsupportedError rather than dropped."""
    if has_image(message.content):
        raise ImagesUnsupportedError(f"provider '{provider}' takes no images in system messages ({field} is text "
                                     "only); move the image to a user message")
    return message.text


def unforced(choice: ToolChoice | None, thinking_budget: int | None, provider: str) -> ToolChoice | None:
    """The tool choice to send to Claude: with extended thinking on, forced tool use ("any" or
    a ToolFunction) is refused by the API, so "auto" goes instead, with a warning."""
    if thinking_budget is None or not (choice == "any" or isinstance(choice, ToolFunction)):
        return choice
    warn_unsupported(provider, "tool_choice", 'forced tool use is not allowed with extended thinking; "auto" is sent')
    return "auto"


def merge_turns(turns: list[Turn], text_block: Callable[[str], Any]) -> list[Turn]:
    """Consecutive turns of one role merged into one, as APIs with alternating turns require:
    two strings are joined by a blank line; otherwise their blocks are concatenated, a string
    becoming `text_block(string)` (left out when empty)."""
    merged: list[Turn] = []
    for role, content in turns:
        if not merged or merged[-1][0] != role:
            merged.append((role, content))
            continue
        before = merged[-1][1]
        if isinstance(before, str) and isinstance(content, str):
            merged[-1] = (role, f"{before}\n\n{content}")
        else:
            merged[-1] = (role, [*_blocks(before, text_block), *_blocks(content, text_block)])
    return merged


def _blocks(content: str | list[Any], text_block: Callable[[str], Any]) -> list[Any]:
    if isinstance(content, list):
        return content
    return [text_block(content)] if content else []
