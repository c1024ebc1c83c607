"""Four-option multiple choice general-knowledge questions from data/multiple_choice.jsonl.

    evalkit eval tasks/multiple_choice.py
"""

from __future__ import annotations

from pathlib import Path

from evalkit import Task, json_dataset, task
from evalkit.scorer import choice
from evalkit.solver import multiple_choice

DATA = Path(__file__).parent / "data" / "multiple_choice.jsonl"


@task
def general_knowledge(epochs: int = 1) -> Task:
    """The letter the model picks must be the target letter."""
    return Task(
        dataset=json_dataset(DATA, name="general_knowledge"),
        solver=multiple_choice(),
        scorer=choice(),
        epochs=epochs,
        config={"temperature": 0.0, "max_tokens": 8},
    )
