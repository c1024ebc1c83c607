"""`embedding_similarity()`: how close the reply is in meaning to a target, by embeddings."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evalkit.errors import DefinitionError
from evalkit.model.model import Model, get_model
from evalkit.scorer.common import completion
from evalkit.scorer.metric import accuracy, mean, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.state import TaskState


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between `a` and `b` (0 when either is the zero vector)."""
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b)) / norms if norms else 0.0


@scorer(metrics={"similarity": [mean(), stderr()], "correct": [accuracy(), stderr()]})
def embedding_similarity(model: str | Model = "openai/text-embedding-3-small", threshold: float = 0.8) -> Scorer:
    """The reply's highest cosine similarity to any target, both embedded by `model` (a Model
    or "provider/model", made on first use), as `{"similarity": float, "correct": C or I}`:
    correct when the similarity reaches `threshold`. Metrics: the mean similarity and the
    accuracy. A blank reply, or a sample without a target, scores 0 without a request."""
    if not isinstance(model, (str, Model)):
        raise DefinitionError(f"embedding_similarity(): model must be 'provider/model' or a Model (got {model!r})")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
        raise DefinitionError(f"embedding_similarity(): threshold must be a number from -1 to 1 (got {threshold!r})")
    embedder: list[Model] = [model] if isinstance(model, Model) else []

    async def score(state: TaskState, target: Target) -> Score:
        answer = completion(state)
        targets = [each for each in target if each.strip()]
        if not answer.strip() or not targets:
            why = "the reply is blank" if targets else "the sample has no target"
            return Score({"similarity": 0.0, "correct": INCORRECT}, answer=answer, explanation=f"{why}: nothing to compare")
        if not embedder:
            embedder.append(get_model(model))
        reply, *wanted = await embedder[0].embed([answer, *targets])
        similarity, closest = max((cosine_similarity(reply, vector), text) for vector, text in zip(wanted, targets))
        verdict, side = (CORRECT, "at or above") if similarity >= threshold else (INCORRECT, "below")
        explanation = f"cosine similarity {similarity:.4f} to {closest!r}, {side} the threshold {threshold:g}"
        return Score({"similarity": similarity, "correct": verdict}, answer=answer, explanation=explanation)

    return score
