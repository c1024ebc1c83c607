"""The built-in scorers on hand-built task states: values, answers read, and Inspect's names."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from evalkit.errors import DefinitionError
from evalkit.model.types import ModelOutput
from evalkit.registration import describe
from evalkit.scorer import (
    CORRECT, INCORRECT, NOANSWER, Score, Scorer, accuracy, answer, choice, exact, f1, includes, match, mean,
    pattern, stderr,
)
from evalkit.scorer.scorer import scorer_metrics
from evalkit.scorer.score import Target
from evalkit.solver.state import TaskState

C, I, N = CORRECT, INCORRECT, NOANSWER
NINE = ["3", "4", "5", "6", "7", "8", "9", "10", "11"]  # nine options: "I" is one of the letters


def scored(scorer: Scorer, completion: str, target: str | list[str], choices: list[str] | None = None,
           positions: list[int] | None = None) -> Score:
    state = TaskState("m/x", 1, 1, "q", [], Target(target), choices=choices, choice_positions=positions,
                      output=ModelOutput.from_text("m/x", completion))
    return anyio.run(scorer, state, Target(target))


def value(scorer: Scorer, completion: str, target: str | list[str], choices: list[str] | None = None) -> Any:
    return scored(scorer, completion, target, choices).value


# --- match ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("completion", "target", "expected"), [
    ("The answer is Tokyo.", "tokyo", C),
    ("Tokyo is the answer", "tokyo", I),
    ("It is 7", ["7", "seven"], C),
    ("It is SEVEN", ["7", "seven"], C),
])
def test_match_end(completion: str, target: Any, expected: str) -> None:
    assert value(match(), completion, target) == expected


def test_match_locations() -> None:
    assert value(match("begin"), "Tokyo is the answer", "tokyo") == C
    assert value(match("any"), "I think tokyo, yes", "Tokyo") == C
    assert value(match("exact"), "  tokyo. ", "Tokyo") == C
    assert value(match("exact"), "The answer is Tokyo", "Tokyo") == I  # not "end"
    assert value(match("end", ignore_case=False), "The answer is tokyo", "Tokyo") == I


@pytest.mark.parametrize(("completion", "target"), [
    ("The answer is 14", "4"), ("35", "3.5"), ("4", "-4"), ("1/2", "12"), ("It is 3.5", "5"), ("Tokyos", "Tokyo"),
    ("4,500", "4"), ("4,500", "500"),
])
def test_match_needs_whole_words_and_keeps_inner_punctuation(completion: str, target: str) -> None:
    for location in ("end", "any"):
        assert value(match(location), completion, target) == I, location
    assert value(match("begin"), "4,500 people", "4") == I


@pytest.mark.parametrize(("completion", "target"), [
    ("The answer is 3.5.", "3.5"), ("It is -4", "-4"), ("so: Tokyo!", "tokyo"), ("x = 1/2", "1/2"),
])
def test_match_end_accepts_trailing_punctuation(completion: str, target: str) -> None:
    assert value(match(), completion, target) == C


def test_match_numeric_reads_numbers_as_numbers() -> None:
    numeric = match(numeric=True)
    assert (scored(numeric, "2 + 2 = 4.0", "4").value, scored(numeric, "2 + 2 = 4.0", "4").answer) == (C, "4.0")
    assert value(numeric, "1,000 apples", "1000") == C
    assert value(numeric, "It costs **$4,500**.", "4500") == C
    assert value(numeric, "no number", "3") == I
    assert value(numeric, "x is .5", "0.5") == C and value(numeric, "x is .5", "5") == I
    assert value(numeric, "between 10-15", "-15") == I and value(numeric, "between 10-15", "15") == I
    assert value(numeric, "about 60%", "60") == I  # a percentage is not the number 60
    assert value(numeric, "4,500 people", "4") == I
    assert value(numeric, "123457", "123456") == I  # no rounding to a few significant digits
    assert value(match("begin", numeric=True), "7 of 9", "7") == C
    assert value(match("any", numeric=True), "7 of 9 (or 8)", "8") == C
    assert value(match("exact", numeric=True), "8.", "8") == C
    assert value(match("exact", numeric=True), "it is 8", "8") == I
    assert value(numeric, "The answer is Paris", "paris") == C  # a target that is no number: text


# --- includes, exact, f1 --------------------------------------------------------------------

def test_includes() -> None:
    assert value(includes(), "The capital is TOKYO", "Tokyo") == C
    assert value(includes(ignore_case=False), "The capital is TOKYO", "Tokyo") == I
    assert value(includes(), "Tokyos", "Tokyo") == C  # a substring, as Inspect's includes()


def test_exact_normalises_case_articles_punctuation_and_numbers() -> None:
    assert value(exact(), " Tokyo. ", "Tokyo") == C
    assert value(exact(), "PARIS", "Paris") == C
    assert value(exact(), "The Eiffel Tower!", "eiffel tower") == C
    assert value(exact(), "4.0", "4") == C and value(exact(), "1,000", "1000") == C
    assert value(exact(), "Tokyo city", "Tokyo") == I
    assert value(exact(), "-4", "4") == I
    assert value(exact(), "dog bites man", "man bites dog") == I


def test_f1_word_overlap() -> None:
    assert value(f1(), "The capital is Paris", "Paris") == 0.5  # precision 1/3, recall 1
    assert value(f1(), "Paris, France", "paris france") == 1.0
    assert value(f1(), "London", ["Paris", "London"]) == 1.0  # the best target counts
    assert value(f1(), "Berlin", "Paris") == 0.0
    assert value(f1(stop_words=["capital", "is"]), "The capital is Paris", "Paris") == 1.0
    picked = scored(f1(answer_fn=lambda text: text.split("ANSWER:")[-1]), "thinking... ANSWER: Paris", "Paris")
    assert (picked.value, picked.answer) == (1.0, " Paris")


def test_metrics_and_names_follow_inspect() -> None:
    names = {describe(m)["name"] for s in (exact(), f1()) for m in scorer_metrics(s)}
    assert names == {"mean", "stderr"}
    for made in (match(), includes(), pattern("(x)"), answer("word"), choice()):
        assert [describe(m)["name"] for m in scorer_metrics(made)] == ["accuracy", "stderr"]
    assert describe(match("any", numeric=True)) == {"name": "match", "args": {"location": "any", "ignore_case": True, "numeric": True}}
    assert describe(answer("letter"))["name"] == "answer"
    assert accuracy and mean and stderr  # the metrics named above are the exported ones


# --- pattern, answer ------------------------------------------------------------------------

def test_pattern_reads_groups_and_gives_noanswer_when_nothing_matches() -> None:
    found = scored(pattern(r"ANSWER:\s*(\w+)"), "steps... ANSWER: 42", "42")
    assert (found.value, found.answer) == (C, "42")
    assert value(pattern(r"ANSWER:\s*(\w+)"), "no answer here", "42") == N
    wrong = scored(pattern(r"ANSWER:\s*(\w+)"), "ANSWER: 41", "42")
    assert (wrong.value, wrong.answer) == (I, "41")
    assert value(pattern(r"answer:\s*(\w+)", ignore_case=False), "ANSWER: 42", "42") == N


def test_pattern_match_all_needs_every_group() -> None:
    both = pattern(r"(\w+) and (\w+)", match_all=True)
    assert value(both, "cats and dogs", ["cats", "dogs"]) == C
    assert value(both, "cats and mice", ["cats", "dogs"]) == I
    assert value(pattern(r"(\w+) and (\w+)"), "cats and mice", ["cats", "dogs"]) == C


def test_answer_letter_word_line() -> None:
    assert value(answer("letter"), "ANSWER: b", "B") == C
    assert value(answer("letter"), "ANSWER: Berlin", "B") == N
    assert value(answer("word"), "ANSWER: yes, because", "Yes") == C
    line = scored(answer("line"), "reasoning\nANSWER: New York City\nthanks", "new york city")
    assert (line.value, line.answer) == (C, "New York City")
    assert value(answer("line"), "no answer line", "x") == N


def test_bad_scorer_arguments_fail_when_made() -> None:
    with pytest.raises(DefinitionError, match="not a valid regular expression"):
        pattern("(unclosed")
    with pytest.raises(DefinitionError, match="no capture group"):
        pattern(r"ANSWER: \w+")
    with pytest.raises(DefinitionError, match="letter, word, line"):
        answer("number")  # type: ignore[arg-type]


# --- choice ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    "B", "b", "(B)", "B.", "ANSWER: B", "ANSWER: b", "answer: (b)", "The answer is (B) Tokyo", "The answer is b",
    "The answer is B. A is wrong because it is in China.", "A good guess would be... ANSWER: B", "**B**",
    "I think it is B", "I choose option B", "Tokyo", "ANSWER: Tokyo", "B) Tokyo. I am sure.",
])
def test_choice_reads_the_letter_picked(reply: str) -> None:
    result = scored(choice(), reply, "B", ["Beijing", "Tokyo", "Seoul"])
    assert (result.value, result.answer) == (C, "B")


def test_choice_with_nine_options_does_not_read_the_pronoun_i() -> None:
    result = scored(choice(), "B) 4. I am confident.", "B", NINE)
    assert (result.value, result.answer) == (C, "B")
    assert scored(choice(), "I think it is B", "B", NINE).answer == "B"
    assert scored(choice(), "ANSWER: I", "I", NINE).value == C  # "I" as the option it names


@pytest.mark.parametrize(("reply", "expected"), [
    ("I don't know", None), ("the answer is a matter of taste", None), ("A or C, hard to say", None), ("C", "C"),
])
def test_choice_wrong_or_unreadable(reply: str, expected: str | None) -> None:
    result = scored(choice(), reply, "B", ["w", "x", "y", "z"])
    assert (result.value, result.answer) == (I, expected)


def test_choice_multiple_correct_compares_the_sets() -> None:
    options = ["3", "4", "9", "10"]
    assert scored(choice(), "ANSWER: B, C", "B,C", options).value == C
    assert scored(choice(), "ANSWER: C and B", ["B", "C"], options).answer == "B, C"
    assert scored(choice(), "ANSWER: B", "B,C", options).value == I
    assert scored(choice(), "ANSWER: B, C, D", "B,C", options).value == I


def test_choice_maps_shuffled_letters_back() -> None:
    shown = ["Seoul", "Beijing", "Tokyo"]  # the dataset's C, A, B
    result = scored(choice(), "ANSWER: C", "B", shown, positions=[2, 0, 1])
    assert (result.value, result.answer) == (C, "B")
    assert "C, A, B" in (result.explanation or "")
    assert scored(choice(), "ANSWER: B", "B", shown, positions=[2, 0, 1]).answer == "A"
    assert scored(choice(), "Tokyo", "Tokyo", shown, positions=[2, 0, 1]).value == C  # a target given as text


def test_choice_needs_choices() -> None:
    with pytest.raises(ValueError, match="needs a sample with choices"):
        scored(choice(), "B", "B")
