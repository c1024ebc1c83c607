"""`exact()` and `f1()`: the reply against the targets as normalised words."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from evalkit.scorer.common import completion
from evalkit.scorer.match import parse_number
from evalkit.scorer.metric import mean, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.state import TaskState

_ARTICLES = {"a", "an", "the"}
_SPLIT = re.compile(r"\s+|(?<=\S)-")  # whitespace, and hyphens inside words ("well-known", "10-15")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _word(token: str) -> str:
    """One token normalised: a number in one canonical form ("4", "4.0" and "4,000" become
    "4.0" and "4000.0"), anything else case-folded and without punctuation."""
    number = parse_number(token)
    return str(number) if number is not None else token.casefold().translate(_PUNCTUATION)


def words(text: str, dropped: frozenset[str] | set[str] = _ARTICLES) -> list[str]:
    """`text` as normalised words, without those in `dropped` (default: a, an, the)."""
    return [w for w in (_word(t) for t in _SPLIT.split(text)) if w and w not in dropped]


def f1_of(answer: list[str], target: list[str]) -> float:
    """The harmonic mean of precision and recall of the distinct words of `answer` against
    those of `target` (an empty side counts as fully precise / fully recalled)."""
    said, wanted = set(answer), set(target)
    common = len(said & wanted)
    precision = common / len(said) if said else 1.0
    recall = common / len(wanted) if wanted else 1.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@scorer(metrics=[mean(), stderr()])
def exact() -> Scorer:
    """Correct when the reply and a target are the same words after normalising both: case,
    punctuation, articles (a, an, the), whitespace and the way a number is written."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = completion(state)
        said = words(answer)
        ok = any(said == words(t) for t in target if t.strip())
        return Score(CORRECT if ok else INCORRECT, answer=answer)

    return score


@scorer(metrics=[mean(), stderr()])
def f1(answer_fn: Callable[[str], str] | None = None, stop_words: list[str] | None = None) -> Scorer:
    """The best F1 of word overlap (rounded to 2 places) between the reply and any target,
    words normalised as `exact()` does. `answer_fn` picks the answer out of the reply;
    `stop_words` are left out of both sides."""
    dropped = _ARTICLES | {_word(w) for w in stop_words or []}

    async def score(state: TaskState, target: Target) -> Score:
        answer = completion(state)
        answer = answer_fn(answer) if answer_fn else answer
        said = words(answer, dropped)
        best = max((f1_of(said, words(t, dropped)) for t in target if t.strip()), default=0.0)
        return Score(round(best, 2), answer=answer)

    return score
