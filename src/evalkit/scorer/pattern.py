"""`pattern()` and `answer()`: read the answer out of the reply with a regular expression."""

from __future__ import annotations

import re
from typing import Literal

from evalkit.errors import DefinitionError
from evalkit.scorer.common import compile_pattern, completion, fold
from evalkit.scorer.metric import accuracy, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, NOANSWER, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.state import TaskState

ANSWER_PATTERNS = {
    "letter": r"ANSWER\s*:\s*([A-Za-z])(?![\w])",
    "word": r"ANSWER\s*:\s*(\w+)",
    "line": r"ANSWER\s*:\s*([^\n]*?)\s*(?:\n|$)",
}
"""What `answer()` reads after "ANSWER:": one letter, one word, or the rest of the line."""


def _is_target(text: str, target: Target, ignore_case: bool) -> bool:
    return fold(text.strip(), ignore_case) in {fold(t.strip(), ignore_case) for t in target}


@scorer(metrics=[accuracy(), stderr()])
def pattern(pattern: str, ignore_case: bool = True, match_all: bool = False) -> Scorer:
    """Read the answer with the first match of `pattern` (at least one capture group) and
    compare its groups with the targets: correct when any group is a target, or with
    `match_all` when every group is. NOANSWER when the pattern finds nothing."""
    compiled = compile_pattern(pattern, re.IGNORECASE if ignore_case else 0, "pattern():",
                               "has no capture group; put the answer in (...)")

    async def score(state: TaskState, target: Target) -> Score:
        found = compiled.search(completion(state))
        if found is None:
            return Score(NOANSWER, explanation=f"pattern {pattern!r} found nothing in the reply")
        groups = [g for g in found.groups() if g is not None]
        hits = [g for g in groups if _is_target(g, target, ignore_case)]
        if match_all:
            ok = bool(groups) and len(hits) == len(groups)
            return Score(CORRECT if ok else INCORRECT, answer=", ".join(groups))
        answer = hits[0] if hits else (groups[0] if len(groups) == 1 else None)
        return Score(CORRECT if hits else INCORRECT, answer=answer)

    return score


_pattern_scorer = pattern  # `answer()` below names its argument `pattern`, as Inspect does


@scorer(metrics=[accuracy(), stderr()])
def answer(pattern: Literal["letter", "word", "line"]) -> Scorer:
    """Read the answer after "ANSWER:" in the reply: a single "letter" (multiple choice), a
    "word" (yes/no), or the rest of the "line"; compared with the targets as `pattern()` does."""
    if pattern not in ANSWER_PATTERNS:
        raise DefinitionError(f"answer(): pattern must be one of {', '.join(ANSWER_PATTERNS)}, not {pattern!r}")
    return _pattern_scorer(ANSWER_PATTERNS[pattern])
