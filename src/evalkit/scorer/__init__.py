"""Scorers, metrics and epoch reducers."""

from evalkit.scorer.metrics import Metric, accuracy, mean, stderr
from evalkit.scorer.score import CORRECT, INCORRECT, Score, Scorer, scorer
from evalkit.scorer.scorers import choice, exact, includes, match, pattern

__all__ = [
    "CORRECT", "INCORRECT", "Metric", "Score", "Scorer", "accuracy", "choice", "exact",
    "includes", "match", "mean", "pattern", "scorer", "stderr",
]
