"""Four-option multiple choice general-knowledge questions from data/multiple_choice.jsonl.

    evalkit eval tasks/multiple_choice.py
    evalkit eval tasks/multiple_choice.py -T shuffle=true --epochs 3
"""

from __future__ import annotations

from pathlib import Path

from evalkit import Task, json_dataset, task
from evalkit.scorer import choice
from evalkit.solver import multiple_choice

DATA = Path(__file__).parent / "data" / "multiple_choice.jsonl"


@task
def general_knowledge(epochs: int = 1, shuffle: bool = False) -> Task:
    """The option the model picks must be the target; with `shuffle`, the options are shown in
    an order drawn per sample and epoch (the same on every rerun)."""
    return Task(
        dataset=json_dataset(DATA, name="general_knowledge"),
        solver=multiple_choice(shuffle=shuffle),
        scorer=choice(),
        epochs=epochs,
        config={"temperature": 0.0, "max_tokens": 8},
    )
