"""Conversations for APIs that take the system prompt apart and want alternating turns
(anthropic, bedrock)."""

from __future__ import annotations

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
