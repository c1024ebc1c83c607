"""`fewshot`: a solver that shows the model k worked examples drawn from a dataset."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any, Literal

from evalkit.dataset.loaders import Dataset, samples_fingerprint
from evalkit.dataset.sample import Sample
from evalkit.errors import DefinitionError
from evalkit.model.types import ChatMessageSystem
from evalkit.registration import Registration, attach
from evalkit.solver.builtins import format_choices
from evalkit.solver.solver import Generate, Solver
from evalkit.solver.state import TaskState

DEFAULT_FEWSHOT_TEMPLATE = "Q: {input}\nA: {target}"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fewshot(
    dataset: Dataset | Iterable[Sample],
    k: int,
    seed: int | None = None,
    template: str = DEFAULT_FEWSHOT_TEMPLATE,
    separator: str = "\n\n",
    role: Literal["user", "system"] = "user",
) -> Solver:
    """Put `k` examples from `dataset` before each sample's question, each rendered with
    `template`, joined by `separator`.

    `template` may use `{input}`, `{target}` (the first target), `{choices}` (one `A) text`
    line each) and the examples' metadata fields. With `seed=None` the first k examples are
    shown; with a seed, k drawn at random, the same ones for a given sample on every run. An
    example equal to the sample itself (same input and target) is never shown, so the
    examples may come from the evaluated dataset. `role="user"` puts them at the start of the
    user prompt (as lm-evaluation-harness does); `role="system"` in a system message after
    any existing ones.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DefinitionError(f"fewshot(): k must be a positive whole number (got {k!r})")
    if role not in ("user", "system"):
        raise DefinitionError(f"fewshot(): role must be 'user' or 'system' (got {role!r})")
    examples = list(dataset)
    if len(examples) < k:
        raise DefinitionError(f"fewshot(): k={k} but the dataset has {len(examples)} sample(s)")
    texts = [_render(template, example, number) for number, example in enumerate(examples, 1)]
    keys = [_key(example) for example in examples]

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        own = _key_of_state(state)
        candidates = [text for text, key in zip(texts, keys) if key != own]
        if len(candidates) < k:
            raise ValueError(f"fewshot(): k={k} but only {len(candidates)} example(s) differ from sample {state.sample_id}")
        chosen = candidates[:k] if seed is None else random.Random(f"{seed}:{state.sample_id}").sample(candidates, k)
        shown = separator.join(chosen)
        if role == "system":
            _insert_system(state, shown)
        else:
            state.replace_user_prompt(shown + separator + state.user_prompt.content)
        return state

    described = {"dataset": {"name": getattr(dataset, "name", "dataset"), "fingerprint": samples_fingerprint(examples)},
                 "k": k, "seed": seed, "template": template, "separator": separator, "role": role}
    return attach(solve, Registration("solver", "fewshot", described))


def _render(template: str, example: Sample, number: int) -> str:
    values: dict[str, Any] = {
        **(example.metadata or {}),
        "input": example.input_text,
        "target": example.targets[0] if example.targets else "",
        "choices": format_choices(example.choices or []),
    }
    missing = sorted({name for name in _FIELD.findall(template) if name not in values})
    if missing:
        raise DefinitionError(f"fewshot(): the template uses {', '.join('{' + m + '}' for m in missing)}, which example "
                              f"{number} (id {example.id}) lacks; it has {', '.join(sorted(values))}")
    return _FIELD.sub(lambda m: str(values[m.group(1)]), template)


def _key(sample: Sample) -> tuple[str, tuple[str, ...]]:
    return sample.input_text, tuple(sample.targets)


def _key_of_state(state: TaskState) -> tuple[str, tuple[str, ...]]:
    return state.input_text, tuple(state.target)


def _insert_system(state: TaskState, text: str) -> None:
    position = 0
    while position < len(state.messages) and isinstance(state.messages[position], ChatMessageSystem):
        position += 1
    state.messages.insert(position, ChatMessageSystem(content=text))
