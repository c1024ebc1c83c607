"""`Score`, its value types, `Target` and `value_to_float` (Inspect's names and semantics)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from evalkit.errors import EvalkitError

CORRECT = "C"
"""Value of a correct answer."""
INCORRECT = "I"
"""Value of an incorrect answer."""
PARTIAL = "P"
"""Value of a partially correct answer (0.5 as a float)."""
NOANSWER = "N"
"""Value when no answer could be found (0 as a float)."""

ScalarValue = Union[str, int, float, bool]
Value = Union[ScalarValue, Sequence[ScalarValue], Mapping[str, Union[ScalarValue, None]]]
"""What a score holds: a number, a bool, a string such as CORRECT, a list or a dict."""


class ScoreValueError(EvalkitError, ValueError):
    """A score value that a metric or reducer cannot turn into a number."""


ValueToFloat = Callable[[Value], float]

_TRUE_WORDS = {"yes", "true"}
_FALSE_WORDS = {"no", "false"}


def value_to_float(
    correct: str = CORRECT, incorrect: str = INCORRECT, partial: str = PARTIAL, noanswer: str = NOANSWER
) -> ValueToFloat:
    """A function from score values to floats: numbers as they are, bools as 1/0, the letters
    C/I/P/N as 1/0/0.5/0, "yes"/"true" as 1 and "no"/"false" as 0, numeric strings parsed.

    Unlike Inspect (which warns and gives 0), a value it cannot convert raises ScoreValueError:
    a silent 0 would corrupt the metric.
    """
    letters = {correct: 1.0, incorrect: 0.0, partial: 0.5, noanswer: 0.0}

    def to_float(value: Value) -> float:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            text = value.strip()
            if text in letters:
                return letters[text]
            if text.lower() in _TRUE_WORDS:
                return 1.0
            if text.lower() in _FALSE_WORDS:
                return 0.0
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isnan(number):
                return number
            raise ScoreValueError(f"score value {value!r} is not a number or one of C/I/P/N, yes/no, true/false")
        number = _as_number(value)
        if number is not None:
            return number
        kind = "dict" if isinstance(value, Mapping) else type(value).__name__
        raise ScoreValueError(f"a {kind} score value ({_short(value)}) cannot be reduced to one number; "
                              "give the scorer per-key metrics or return a scalar")

    return to_float


def _as_number(value: Any) -> float | None:
    """numpy and other numeric scalars (anything with a float value and no length)."""
    if isinstance(value, (Mapping, Sequence)) or not hasattr(value, "__float__"):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


to_float = value_to_float()
"""The default conversion used by the built-in metrics and reducers."""


@dataclass(slots=True)
class Score:
    """A scorer's verdict on one sample: its value, the answer it read, why, and extras."""

    value: Value
    answer: str | None = None
    explanation: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The value as text."""
        return str(self.value)

    def as_float(self) -> float:
        """The value as a float (see `value_to_float`)."""
        return to_float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; empty optional fields are left out."""
        data: dict[str, Any] = {"value": self.value}
        if self.answer is not None:
            data["answer"] = self.answer
        if self.explanation is not None:
            data["explanation"] = self.explanation
        if self.metadata:
            data["metadata"] = self.metadata
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        """A Score from its JSON form (as read back from a log)."""
        return cls(data["value"], data.get("answer"), data.get("explanation"), data.get("metadata"))


class Target(Sequence[str]):
    """A sample's target: one or more acceptable answers. Iterates over them; `.text` joins them."""

    __slots__ = ("target",)

    def __init__(self, target: str | Sequence[str]) -> None:
        self.target: list[str] = [target] if isinstance(target, str) else list(target)

    @property
    def text(self) -> str:
        """The target answers joined into one string."""
        return "".join(self.target)

    def __getitem__(self, index: Any) -> Any:
        return self.target[index]

    def __len__(self) -> int:
        return len(self.target)

    def __iter__(self) -> Iterator[str]:
        return iter(self.target)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Target):
            return self.target == other.target
        return isinstance(other, list) and self.target == other

    def __repr__(self) -> str:
        return f"Target({self.target!r})"


@dataclass(slots=True)
class SampleScore:
    """A score with the sample it belongs to, as metrics receive it."""

    score: Score
    sample_id: int | str | None = None
    sample_metadata: dict[str, Any] = field(default_factory=dict)
