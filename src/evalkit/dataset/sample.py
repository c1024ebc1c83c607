"""`Sample`: one input to evaluate, with its target."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, get_args

from evalkit.model.types import ChatMessage, input_text, message_to_dict
from evalkit.sandbox.spec import SandboxEnvironmentType, resolve_sandbox

_MESSAGE_TYPES = get_args(ChatMessage)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class Sample:
    """One dataset row.

    `input` is a prompt string or a list of chat messages; `target` the ideal answer(s);
    `choices` the options of a multiple-choice question; `id` is assigned (1, 2, ...) when
    missing. Wrong types raise TypeError; text that is not valid Unicode raises ValueError.
    """

    input: str | list[ChatMessage]
    target: str | list[str] = ""
    choices: list[str] | None = None
    id: int | str | None = None
    metadata: dict[str, Any] | None = None
    sandbox: SandboxEnvironmentType | None = None
    """This sample's sandbox, instead of the task's (same forms as `Task.sandbox`)."""

    def __post_init__(self) -> None:
        if isinstance(self.input, list) and all(isinstance(m, _MESSAGE_TYPES) for m in self.input):
            _check_unicode([m.text for m in self.input], "input")
        else:
            _check_texts(self.input, "input", "text or a list of chat messages", many=False)
        _check_texts(self.target, "target", "text or a list of texts")
        if self.choices is not None:
            _check_texts(self.choices, "choices", "a list of texts", single=False)
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, (int, str))):
            raise TypeError(f"Sample id must be a whole number or text (got {_shown(self.id)})")
        if self.metadata is not None:
            if not isinstance(self.metadata, dict):
                raise TypeError(f"Sample metadata must be a dict (got {_shown(self.metadata)})")
            _check_unicode(self.metadata, "metadata")
        self.sandbox = resolve_sandbox(self.sandbox, "Sample")

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


def _check_texts(value: Any, field: str, expected: str, *, single: bool = True, many: bool = True) -> None:
    """`value` is a str (if `single`) or a list of str (if `many`), all valid Unicode."""
    if not ((single and isinstance(value, str)) or (many and isinstance(value, list) and all(isinstance(t, str) for t in value))):
        raise TypeError(f"Sample {field} must be {expected} (got {_shown(value)})")
    _check_unicode(value, field)


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _check_unicode(value: Any, where: str) -> None:
    """Refuse a lone surrogate anywhere in `value`'s strings (dict keys included): such text
    cannot be written as UTF-8, so the sample could never be logged."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            raise ValueError(
                f"Sample {where} holds a lone surrogate {found.group()!r} at character {found.start() + 1}, which is not "
                "valid Unicode; fix the text (e.g. decode the source with errors='replace')"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, where)
            _check_unicode(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_unicode(item, where)
