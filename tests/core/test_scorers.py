"""Scorers and metrics on hand-built task states."""

from __future__ import annotations

import math

import anyio
import pytest

from evalkit.model.types import ModelOutput
from evalkit.scorer import accuracy, choice, exact, includes, match, mean, pattern, stderr
from evalkit.scorer.score import Scorer
from evalkit.solver.state import TaskState


def score(scorer: Scorer, completion: str, target: list[str], choices: list[str] | None = None) -> tuple[float, str | None]:
    state = TaskState("m/x", 1, 1, "q", [], target, choices=choices, output=ModelOutput.from_text("m/x", completion))
    result = anyio.run(scorer, state, target)
    return result.value, result.answer


@pytest.mark.parametrize(("completion", "target", "expected"), [
    ("The answer is Tokyo.", ["tokyo"], 1.0),
    ("Tokyo is the answer", ["tokyo"], 0.0),
    ("It is 7", ["7", "seven"], 1.0),
])
def test_match_end(completion: str, target: list[str], expected: float) -> None:
    assert score(match(), completion, target)[0] == expected


def test_match_locations_and_numeric() -> None:
    assert score(match("begin"), "Tokyo is the answer", ["tokyo"])[0] == 1.0
    assert score(match("exact"), "tokyo", ["Tokyo"])[0] == 1.0
    assert score(match("any"), "I think tokyo, yes", ["Tokyo"])[0] == 1.0
    assert score(match(numeric=True), "2 + 2 = 4.0", ["4"]) == (1.0, "4.0")
    assert score(match(numeric=True), "1,000 apples", ["1000"])[0] == 1.0
    assert score(match(numeric=True), "no number", ["3"])[0] == 0.0


def test_includes_exact_pattern() -> None:
    assert score(includes(), "The capital is TOKYO", ["Tokyo"])[0] == 1.0
    assert score(includes(ignore_case=False), "The capital is TOKYO", ["Tokyo"])[0] == 0.0
    assert score(exact(), " Tokyo. ", ["Tokyo"])[0] == 1.0
    assert score(exact(), "Tokyo city", ["Tokyo"])[0] == 0.0
    assert score(pattern(r"ANSWER:\s*(\w+)"), "steps... ANSWER: 42", ["42"]) == (1.0, "42")
    assert score(pattern(r"ANSWER:\s*(\w+)"), "no answer", ["42"])[0] == 0.0


def test_choice_reads_letter_or_text() -> None:
    choices = ["Beijing", "Tokyo", "Seoul"]
    assert score(choice(), "B", ["B"], choices) == (1.0, "B")
    assert score(choice(), "ANSWER: B", ["B"], choices)[0] == 1.0
    assert score(choice(), "The answer is (B) Tokyo", ["B"], choices)[0] == 1.0
    assert score(choice(), "Tokyo", ["Tokyo"], choices) == (1.0, "B")
    assert score(choice(), "C", ["B"], choices)[0] == 0.0
    assert score(choice(), "I don't know", ["B"], choices) == (0.0, None)


def test_metrics() -> None:
    values = [1.0, 0.0, 1.0, 1.0]
    assert accuracy()(values) == 0.75 and mean()(values) == 0.75
    assert stderr()(values) == pytest.approx(0.25)
    assert stderr()([1.0]) == 0.0
    assert math.isnan(accuracy()([]))


@pytest.mark.parametrize(("completion", "target"), [
    ("The answer is 14", "4"), ("35", "3.5"), ("4", "-4"), ("1/2", "12"), ("It is 3.5", "5"), ("Tokyos", "Tokyo"),
])
def test_match_needs_whole_words_and_keeps_inner_punctuation(completion: str, target: str) -> None:
    assert score(match(), completion, [target])[0] == 0.0
    assert score(match("any"), completion, [target])[0] == 0.0


@pytest.mark.parametrize(("completion", "target"), [
    ("The answer is 3.5.", "3.5"), ("It is -4", "-4"), ("so: Tokyo!", "tokyo"), ("x = 1/2", "1/2"),
])
def test_match_end_accepts_trailing_punctuation(completion: str, target: str) -> None:
    assert score(match(), completion, [target])[0] == 1.0


def test_choice_prefers_the_answer_line_and_ignores_articles() -> None:
    choices = ["w", "x", "y", "z"]
    assert score(choice(), "A good guess would be... ANSWER: C", ["C"], choices) == (1.0, "C")
    assert score(choice(), "I think it is B", ["B"], choices + list("efghi")) == (1.0, "B")
    assert score(choice(), "b", ["B"], choices) == (1.0, "B")
