"""`choice()`: which option letters a multiple-choice reply picked, in the dataset's lettering."""

from __future__ import annotations

import re

from evalkit.scorer.common import completion
from evalkit.scorer.match import squash
from evalkit.scorer.metric import accuracy, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.builtins import choice_letter
from evalkit.solver.state import TaskState

_ANSWER_LINE = re.compile(r"ANSWER\s*:\s*([^\n]*)", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s,;&/]+|\band\b", re.IGNORECASE)
_LETTER_TOKEN = re.compile(r"\(?([A-Za-z])[).:]?")
_LEADING_MARK = re.compile(r"\(?([A-Za-z])(?:\)|[.:](?=\s|$))")
_FOLLOWED_BY_WORD = re.compile(r"\s+(?!(?:or|and|nor)\b)[a-z]")  # "A good guess", not "A or C"
_KEYWORD_PHRASE = re.compile(
    r"\b(?:answer|option|choice|choose|pick|select)\b(?:\s+(?:is|would\s+be|will\s+be))?\s*[:=]?\s*"
    r"(?:option\s+|choice\s+)?\(?([A-Za-z])\)?(?![\w'])",
    re.IGNORECASE,
)
_IS_PHRASE = re.compile(r"\bis\s+\(?([A-Z])\)?(?![\w'])")
_LONE_CAPITAL = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")
# (pattern, letters that are an article or a pronoun when a word follows: "a matter", "I think")
_PHRASES = ((_KEYWORD_PHRASE, "ai"), (_IS_PHRASE, "AI"))

_TARGET_SPLIT = re.compile(r"[\s,]+")  # "A, C" or "A C" in a target

def _wordy(found: re.Match[str], text: str, letters: str) -> bool:
    return found.group(1) in letters and _FOLLOWED_BY_WORD.match(text, found.end()) is not None


class _Reader:
    """Reads which options a reply picked, as positions in the list shown to the model."""

    def __init__(self, choices: list[str]) -> None:
        self.choices = choices
        self.letters = [choice_letter(i) for i in range(len(choices))]

    def position(self, letter: str) -> int | None:
        upper = letter.upper()
        return self.letters.index(upper) if upper in self.letters else None

    def letter_list(self, text: str) -> list[int]:
        """Leading letters of `text` such as "B", "(b)", "A, C" or "A and C"."""
        found: list[int] = []
        for token in (t for t in _SEPARATORS.split(text.strip()) if t):
            letter = _LETTER_TOKEN.fullmatch(token)
            position = self.position(letter.group(1)) if letter else None
            if position is None:
                break
            found.append(position)
        return found

    def option_text(self, text: str) -> list[int]:
        said = squash(text)
        return [i for i, option in enumerate(self.choices) if squash(option) and squash(option) == said][:1]

    def phrase(self, text: str) -> list[int]:
        """The last "the answer is B" / "option (c)" phrase, else the last "it is B"."""
        for pattern, wordy in _PHRASES:
            for found in reversed(list(pattern.finditer(text))):
                position = None if _wordy(found, text, wordy) else self.position(found.group(1))
                if position is not None:
                    return [position]
        return []

    def lone_capital(self, text: str) -> list[int]:
        """The one option letter standing alone in `text`; none when several are."""
        candidates = (m for m in _LONE_CAPITAL.finditer(text) if not _wordy(m, text, "AI"))
        found = {p for m in candidates if (p := self.position(m.group(1))) is not None}
        return list(found) if len(found) == 1 else []

    def only_letters(self, text: str) -> list[int]:
        """The letters of a reply that is nothing else ("b", "(B).", "A, C")."""
        letters = self.letter_list(text)
        return letters if len(letters) == len([t for t in _SEPARATORS.split(text.strip(" .!")) if t]) else []

    def leading_mark(self, text: str) -> list[int]:
        """The option a reply starts by naming: "B) 4. I am sure", "(b) Tokyo", "C. Seoul"."""
        mark = _LEADING_MARK.match(text)
        position = self.position(mark.group(1)) if mark else None
        return [] if position is None else [position]

    def read(self, reply: str) -> list[int]:
        """Positions picked: the last "ANSWER: X" line, else a reply that is only letters,
        starts with an option mark, holds an answer phrase, is one option's text, or has
        exactly one option letter standing alone."""
        text = reply.replace("*", "").replace("`", "").strip()
        lines = _ANSWER_LINE.findall(text)
        if lines:
            picked = self.letter_list(lines[-1]) or self.option_text(lines[-1])
            if picked:
                return picked
        for attempt in (self.only_letters, self.leading_mark, self.phrase, self.option_text, self.lone_capital):
            picked = attempt(text)
            if picked:
                return picked
        return []


def _original(positions: list[int], state: TaskState) -> list[int]:
    order = state.choice_positions
    return sorted({order[p] if order else p for p in positions})


def _target_positions(target: Target, dataset_choices: list[str]) -> set[int]:
    reader = _Reader(dataset_choices)
    wanted: set[int] = set()
    for each in target:
        if each in dataset_choices:
            wanted.add(dataset_choices.index(each))
            continue
        positions = (reader.position(part) for part in _TARGET_SPLIT.split(each.strip()) if part)
        wanted.update(p for p in positions if p is not None)
    return wanted


def _dataset_order(state: TaskState) -> list[str]:
    shown = state.choices or []
    if not state.choice_positions:
        return list(shown)
    original = [""] * len(shown)
    for shown_at, position in enumerate(state.choice_positions):
        original[position] = shown[shown_at]
    return original


def _explain(state: TaskState, shown: list[int]) -> str | None:
    if not state.choice_positions:
        return None
    order = ", ".join(choice_letter(p) for p in state.choice_positions)
    said = ", ".join(choice_letter(p) for p in shown) or "nothing"
    return f"options shown in the order of the dataset's {order}; the reply picked {said} as shown"


@scorer(metrics=[accuracy(), stderr()])
def choice() -> Scorer:
    """Score a `multiple_choice()` reply: correct when the options it picked are exactly the
    target's letters (one, or several as "A,C" or ["A", "C"]). Letters are read as the model
    saw them and mapped back through any shuffle, so the answer is in the dataset's lettering."""

    async def score(state: TaskState, target: Target) -> Score:
        if not state.choices:
            raise ValueError(f"choice() needs a sample with choices; sample {state.sample_id} has none")
        shown = _Reader(state.choices).read(completion(state))
        picked = _original(shown, state)
        wanted = _target_positions(target, _dataset_order(state))
        ok = bool(picked) and set(picked) == wanted
        answer = ", ".join(choice_letter(p) for p in picked) or None
        return Score(CORRECT if ok else INCORRECT, answer=answer, explanation=_explain(state, shown))

    return score
