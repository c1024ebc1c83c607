"""Scores, scorers, metrics and epoch reducers (Inspect's names and semantics)."""

from evalkit.scorer.metric import Metric, accuracy, bootstrap_stderr, grouped, mean, metric, std, stderr, var
from evalkit.scorer.reducer import (
    Epochs,
    ScoreReducer,
    at_least,
    max_score,
    mean_score,
    median_score,
    min_score,
    mode_score,
    pass_at,
    score_reducer,
)
from evalkit.scorer.score import (
    CORRECT,
    INCORRECT,
    NOANSWER,
    PARTIAL,
    SampleScore,
    Score,
    Target,
    Value,
    ValueToFloat,
    value_to_float,
)
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.scorer.scoring import score
from evalkit.scorer.choice import choice
from evalkit.scorer.embedding import cosine_similarity, embedding_similarity
from evalkit.scorer.f1 import exact, f1
from evalkit.scorer.match import includes, match
from evalkit.scorer.model_graded import model_graded_fact, model_graded_qa
from evalkit.scorer.pattern import answer, pattern

__all__ = [
    "CORRECT", "Epochs", "INCORRECT", "Metric", "NOANSWER", "PARTIAL", "SampleScore", "Score",
    "ScoreReducer", "Scorer", "Target", "Value", "ValueToFloat", "accuracy", "answer", "at_least",
    "bootstrap_stderr", "choice", "cosine_similarity", "embedding_similarity", "exact", "f1", "grouped",
    "includes", "match", "max_score", "mean",
    "mean_score", "median_score", "metric", "min_score", "mode_score", "model_graded_fact",
    "model_graded_qa", "pass_at", "pattern", "score", "score_reducer", "scorer", "std", "stderr", "value_to_float", "var",
]
