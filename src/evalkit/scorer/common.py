"""Helpers the built-in scorers share: the reply's text, case folding, answer patterns."""

from __future__ import annotations


import re

from evalkit.errors import DefinitionError
from evalkit.solver.state import TaskState


def completion(state: TaskState) -> str:
    """The model's last reply as text ("" before any generate)."""
    return state.output.completion if state.output else ""


def fold(text: str, ignore_case: bool = True) -> str:
    """`text` case-folded when `ignore_case`, else unchanged."""
    return text.casefold() if ignore_case else text


def compile_pattern(regex: str, flags: int, label: str, no_group: str) -> re.Pattern[str]:
    """`regex` compiled, or a one-line DefinitionError (`{label} {regex!r} ...`) when it is
    invalid or has no capture group to read the answer from (`no_group` says what is missing)."""
    try:
        compiled = re.compile(regex, flags)
    except re.error as error:
        raise DefinitionError(f"{label} {regex!r} is not a valid regular expression: {error}") from None
    if compiled.groups == 0:
        raise DefinitionError(f"{label} {regex!r} {no_group}")
    return compiled
