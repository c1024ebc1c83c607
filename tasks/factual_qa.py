"""Short factual questions with one-word answers, read from data/factual_qa.jsonl.

    evalkit eval tasks/factual_qa.py
"""

from __future__ import annotations

from pathlib import Path

from evalkit import Task, json_dataset, task
from evalkit.scorer import includes
from evalkit.solver import generate, system_message

DATA = Path(__file__).parent / "data" / "factual_qa.jsonl"


@task
def factual_qa() -> Task:
    """Correct when any accepted answer appears in the reply."""
    return Task(
        dataset=json_dataset(DATA, name="factual_qa"),
        solver=[system_message("Answer in a few words."), generate()],
        scorer=includes(),
        config={"temperature": 0.0, "max_tokens": 32},
    )
