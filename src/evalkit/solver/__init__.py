"""Solvers: the steps that turn a sample into a model's answer."""

from evalkit.solver.builtins import (
    chain_of_thought,
    generate,
    multiple_choice,
    prompt_template,
    system_message,
    user_message,
)
from evalkit.solver.agent import basic_agent
from evalkit.solver.solver import Generate, Solver, chain, solver
from evalkit.solver.state import TaskState
from evalkit.solver.tools import use_tools

__all__ = [
    "Generate", "Solver", "TaskState", "basic_agent", "chain", "chain_of_thought", "generate",
    "multiple_choice", "prompt_template", "solver", "system_message", "use_tools", "user_message",
]
