"""Built-in scorers: match, includes, exact, pattern, choice."""

from __future__ import annotations

import re
import string
from typing import Literal

from evalkit.scorer.metric import accuracy, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, NOANSWER, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.builtins import choice_letter
from evalkit.solver.state import TaskState

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_EDGES = string.whitespace + string.punctuation.replace("-", "")  # keep a leading minus sign


def normalize(text: str, ignore_case: bool = True) -> str:
    """Collapse whitespace and strip punctuation (but a minus sign) at both ends, and case by
    default; inner punctuation stays, so "3.5" and "35" differ."""
    text = " ".join(text.split()).strip(_EDGES)
    return text.lower() if ignore_case else text


def _found_at(said: str, wanted: str, location: str) -> bool:
    """Whether `wanted` stands as whole words at `location` of `said` (both normalized)."""
    word = re.escape(wanted)
    edge_before, edge_after = r"(?<![\w.\-/])", r"(?![\w/]|[.\-]\w)"
    pattern = {
        "begin": rf"^{word}{edge_after}",
        "end": rf"{edge_before}{word}$",
        "any": rf"{edge_before}{word}{edge_after}",
        "exact": rf"^{word}$",
    }[location]
    return re.search(pattern, said) is not None


def _completion(state: TaskState) -> str:
    return state.output.completion if state.output else ""


def _numbers_equal(a: str, b: str) -> bool:
    try:
        return float(a.replace(",", "")) == float(b.replace(",", ""))
    except ValueError:
        return False


@scorer(metrics=[accuracy(), stderr()])
def match(location: Literal["begin", "end", "any", "exact"] = "end", *, ignore_case: bool = True, numeric: bool = False) -> Scorer:
    """Correct when a target appears at the `location` of the answer.

    With `numeric=True` the number nearest that location is compared numerically (so "4.0"
    matches "4" and "1,000" matches "1000").
    """

    async def score(state: TaskState, target: Target) -> Score:
        answer = _completion(state).strip()
        if numeric:
            numbers = _NUMBER.findall(answer)
            found = (numbers[0] if location == "begin" else numbers[-1]) if numbers else ""
            if location == "any":
                ok = any(_numbers_equal(n, t) for n in numbers for t in target)
            else:
                ok = any(_numbers_equal(found, t) for t in target)
            return Score(CORRECT if ok else INCORRECT, answer=found if location != "any" else answer)
        said = normalize(answer, ignore_case)
        ok = any(_found_at(said, wanted, location) for wanted in (normalize(t, ignore_case) for t in target) if wanted)
        return Score(CORRECT if ok else INCORRECT, answer=answer)

    return score


@scorer(metrics=[accuracy(), stderr()])
def includes(*, ignore_case: bool = True) -> Scorer:
    """Correct when any target occurs anywhere in the answer."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = _completion(state)
        haystack = answer.lower() if ignore_case else answer
        ok = any((t.lower() if ignore_case else t) in haystack for t in target if t)
        return Score(CORRECT if ok else INCORRECT, answer=answer)

    return score


@scorer(metrics=[accuracy(), stderr()])
def exact(*, ignore_case: bool = False) -> Scorer:
    """Correct when the answer equals a target after stripping whitespace and punctuation."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = _completion(state).strip()
        said = normalize(answer, ignore_case)
        ok = any(said == normalize(t, ignore_case) for t in target)
        return Score(CORRECT if ok else INCORRECT, answer=answer)

    return score


@scorer(metrics=[accuracy(), stderr()])
def pattern(regex: str, *, ignore_case: bool = True, match_all: bool = False) -> Scorer:
    """Extract the answer with `regex` (its first group, else the whole match) and compare it
    to the targets; with `match_all`, every group must equal a target."""
    compiled = re.compile(regex, re.IGNORECASE if ignore_case else 0)

    async def score(state: TaskState, target: Target) -> Score:
        found = compiled.search(_completion(state))
        if not found:
            return Score(NOANSWER, explanation=f"no match for pattern {regex!r}")
        groups = [g for g in found.groups() if g is not None] or [found.group(0)]
        wanted = {normalize(t, ignore_case) for t in target}
        hits = [normalize(g, ignore_case) in wanted for g in groups]
        ok = all(hits) if match_all else any(hits)
        return Score(CORRECT if ok else INCORRECT, answer=groups[0] if len(groups) == 1 else ", ".join(groups))

    return score


_ANSWER_LETTER = re.compile(r"ANSWER\s*:\s*\(?([A-Za-z])\b", re.IGNORECASE)
_LONE_LETTER = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")


def _picked_letter(text: str, choices: list[str]) -> str | None:
    """The option letter an answer chose: an `ANSWER: X` line, else a reply that is just a
    letter, else the last standalone capital letter naming an option, else the option whose
    text the reply is."""
    letters = [choice_letter(i) for i in range(len(choices))]
    explicit = _ANSWER_LETTER.findall(text)
    if explicit and explicit[-1].upper() in letters:
        return explicit[-1].upper()
    bare = text.strip(_EDGES)
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    standalone = [m for m in _LONE_LETTER.findall(text) if m in letters]
    if standalone:
        return standalone[-1]
    said = normalize(text)
    return next((letters[i] for i, c in enumerate(choices) if normalize(c) and normalize(c) == said), None)


@scorer(metrics=[accuracy(), stderr()])
def choice() -> Scorer:
    """Score a `multiple_choice()` answer: the letter it chose against the target letter
    (or the target's choice text)."""

    async def score(state: TaskState, target: Target) -> Score:
        choices = state.choices or []
        picked = _picked_letter(_completion(state).strip(), choices)
        letters = {choice_letter(i) for i in range(len(choices))}
        wanted = {t.strip().upper() for t in target if t.strip().upper() in letters}
        wanted |= {choice_letter(choices.index(t)) for t in target if t in choices}
        return Score(CORRECT if picked in wanted else INCORRECT, answer=picked)

    return score
