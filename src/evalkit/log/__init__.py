"""Eval logs: JSON Lines with a header, one line per sample and a footer."""

from evalkit.log.reader import read_eval_log
from evalkit.log.schema import EvalLog, EvalSample

__all__ = ["EvalLog", "EvalSample", "read_eval_log"]
