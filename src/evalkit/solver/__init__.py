"""Solvers: the steps that turn a sample into a model's answer."""

from evalkit.solver.builtins import (
    chain_of_thought,
    generate,
    multiple_choice,
    prompt_template,
    system_message,
    user_message,
)
from evalkit.solver.solver import Generate, Solver, chain, solver
from evalkit.solver.state import TaskState

__all__ = [
    "Generate", "Solver", "TaskState", "chain", "chain_of_thought", "generate",
    "multiple_choice", "prompt_template", "solver", "system_message", "user_message",
]
