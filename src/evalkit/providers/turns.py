"""Conversations for APIs that take the system prompt apart and want alternating turns
(anthropic, bedrock)."""

from __future__ import annotations

from typing import Any, Callable

from evalkit.model.types import ChatMessage, Role


def split_turns(messages: list[ChatMessage]) -> tuple[list[str], list[tuple[Role, list[str]]]]:
    """The system messages' texts, and the other turns as (role, texts) with consecutive
    messages of one role merged into one turn."""
    system: list[str] = []
    turns: list[tuple[Role, list[str]]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        elif turns and turns[-1][0] == message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    return system, turns


Turn = tuple[str, str | list[Any]]
"""A turn: its role, and its content as a string or a list of the API's blocks."""


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
