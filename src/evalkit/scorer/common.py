"""Helpers the built-in scorers share: the reply's text and case folding."""

from __future__ import annotations

import string

from evalkit.solver.state import TaskState

EDGE_PUNCTUATION = string.whitespace + string.punctuation


def completion(state: TaskState) -> str:
    """The model's last reply as text ("" before any generate)."""
    return state.output.completion if state.output else ""


def fold(text: str, ignore_case: bool = True) -> str:
    """`text` case-folded when `ignore_case`, else unchanged."""
    return text.casefold() if ignore_case else text
