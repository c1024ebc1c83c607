"""Arithmetic: generated addition, subtraction and multiplication questions, scored numerically.

    evalkit eval tasks/arithmetic.py -T n=50 -T max_operand=20 -T seed=1
"""

from __future__ import annotations

import random

from evalkit import EvalkitError, Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate, system_message

OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def make_samples(n: int, max_operand: int, seed: int) -> list[Sample]:
    """`n` questions with operands from 0 to `max_operand`, the same for the same seed."""
    rng = random.Random(seed)
    samples = []
    for index in range(1, n + 1):
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        op = rng.choice(sorted(OPERATIONS))
        samples.append(Sample(input=f"What is {a} {op} {b}?", target=str(OPERATIONS[op](a, b)), id=index))
    return samples


@task
def arithmetic(n: int = 20, max_operand: int = 10, seed: int = 0) -> Task:
    """Small-number arithmetic; the last number in the answer must equal the result."""
    if n < 1 or max_operand < 0:
        raise EvalkitError(f"-T n must be 1 or more and -T max_operand 0 or more (got n={n}, max_operand={max_operand})")
    return Task(
        dataset=make_samples(n, max_operand, seed),
        solver=[system_message("Answer with the number only."), generate()],
        scorer=match(numeric=True),
        config={"temperature": 0.0, "max_tokens": 64},
    )
