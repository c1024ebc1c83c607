"""`match()` and `includes()`: is the target in the reply, as text or as a number?"""

from __future__ import annotations

import math
import re
import string
from typing import Literal

from evalkit.scorer.common import completion, fold
from evalkit.scorer.metric import accuracy, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.state import TaskState

Location = Literal["begin", "end", "any", "exact"]

_TEXT_EDGES = (string.whitespace + string.punctuation).replace("-", "")  # a leading minus sign is part of the answer
# A target stands as whole words: not glued to letters or digits, nor part of "3.5", "4,500",
# "x-4" or "1/2" around it.
_BEFORE = re.compile(r"(?<![\w./-])(?<!\d,)")
_AFTER = re.compile(r"(?![\w/])(?![.-]\w)(?!,\d)")

_NUMBER_NOISE = re.compile(r"[$€£,*_]")  # currency, thousands separators, markdown emphasis
_TOKEN_EDGES = "!?:;()[]{}'\"`~<=>@#^&|"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def squash(text: str, ignore_case: bool = True) -> str:
    """Whitespace collapsed, punctuation stripped from both ends (a minus sign kept), and case
    folded by default; inner punctuation stays, so "3.5" and "35" differ."""
    return fold(" ".join(text.split()).strip(_TEXT_EDGES), ignore_case)


def text_found(said: str, wanted: str, location: Location) -> bool:
    """Whether `wanted` stands as whole words at `location` of `said` (both squashed)."""
    if location == "exact":
        return said == wanted
    if location == "begin":
        return said.startswith(wanted) and _stands(said, 0, len(wanted))
    if location == "end":
        start = len(said) - len(wanted)
        return said.endswith(wanted) and _stands(said, start, len(said))
    start = said.find(wanted)
    while start >= 0:
        if _stands(said, start, start + len(wanted)):
            return True
        start = said.find(wanted, start + 1)
    return False


def _stands(said: str, start: int, end: int) -> bool:
    """Whether `said[start:end]` is not glued to what is around it (no regex is compiled per
    target: scoring is on every sample's path)."""
    return _BEFORE.match(said, start) is not None and _AFTER.match(said, end) is not None


def parse_number(token: str) -> float | None:
    """A whitespace-free token as a finite number, ignoring currency signs, thousands
    separators, markdown emphasis and sentence punctuation at its edges ("$4,500." is 4500,
    ".5" is 0.5); None for anything else ("10-15", "60%", "4x", "inf")."""
    cleaned = number_text(token)
    if not _NUMBER.fullmatch(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def number_text(token: str) -> str:
    """`token` without the noise `parse_number` ignores (a sentence's full stop included)."""
    cleaned = _NUMBER_NOISE.sub("", token.replace("\u2212", "-")).strip(_TOKEN_EDGES)
    return cleaned.rstrip(".").strip(_TOKEN_EDGES)


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _numeric_match(answer: str, wanted: float, location: Location) -> tuple[str, bool]:
    """(the number read at `location`, whether it equals `wanted`)."""
    if location == "exact":
        number = parse_number(answer)
        return answer, number is not None and _same_number(number, wanted)
    numbers = [(token, value) for token in answer.split() if (value := parse_number(token)) is not None]
    if location == "any":
        hit = next((token for token, value in numbers if _same_number(value, wanted)), None)
        return (number_text(hit), True) if hit else (answer, False)
    if not numbers:
        return "", False
    token, value = numbers[0] if location == "begin" else numbers[-1]
    return number_text(token), _same_number(value, wanted)


def _text_match(said: str, target: str, location: Location, ignore_case: bool) -> bool:
    """Whether `target` is found in the reply `said` (squashed once for all targets)."""
    wanted = squash(target, ignore_case)
    return bool(wanted) and text_found(said, wanted, location)


@scorer(metrics=[accuracy(), stderr()])
def match(location: Location = "end", *, ignore_case: bool = True, numeric: bool = False) -> Scorer:
    """Correct when a target stands, as whole words, at the `location` of the reply: its
    "begin", its "end" (default), "any" place, or the whole reply ("exact"). Case and the
    whitespace and punctuation around the reply are ignored by default.

    With `numeric=True`, a target that is a number is compared as a number with the first
    ("begin"), last ("end") or any number in the reply, or the whole reply ("exact"); currency
    signs, thousands separators and `*`/`_` are ignored, "%" is not ("60%" is no number).
    A target that is not a number is matched as text.
    """

    async def score(state: TaskState, target: Target) -> Score:
        answer = completion(state).strip()
        said = squash(answer, ignore_case)
        read = answer
        for each in target:
            wanted = parse_number(each.strip()) if numeric else None
            if wanted is not None:
                read, ok = _numeric_match(answer, wanted, location)
            else:
                read, ok = answer, _text_match(said, each, location, ignore_case)
            if ok:
                return Score(CORRECT, answer=read)
        return Score(INCORRECT, answer=read)

    return score


@scorer(metrics=[accuracy(), stderr()])
def includes(ignore_case: bool = True) -> Scorer:
    """Correct when any target occurs anywhere in the reply (a substring match)."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = completion(state)
        haystack = fold(answer, ignore_case)
        ok = any(fold(t, ignore_case) in haystack for t in target if t)
        return Score(CORRECT if ok else INCORRECT, answer=answer)

    return score
