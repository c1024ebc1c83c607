"""Built-in solvers: generate, messages, prompt templates, chain of thought, multiple choice."""

from __future__ import annotations

import random
import re
import string
from typing import Any, Callable

from evalkit.errors import DefinitionError
from evalkit.model.types import ChatMessageSystem, ChatMessageUser
from evalkit.solver.solver import Generate, Solver, solver
from evalkit.solver.state import TaskState


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, state: TaskState, **values: Any) -> str:
    """Fill each `{name}` of `template` from `values`, then the sample's metadata. Everything
    else stays as written: unknown names, and braces of JSON examples in the template."""
    known = {**state.metadata, **values}
    return _PLACEHOLDER.sub(lambda m: str(known[m.group(1)]) if m.group(1) in known else m.group(0), template)


@solver
def generate(**config: Any) -> Solver:
    """Call the model (optionally overriding GenerateConfig fields for this call); `cache=True`
    (or an expiry such as "1D", or a CachePolicy) serves it from the output cache."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        return await generate(state, **config)

    return solve


@solver
def system_message(template: str) -> Solver:
    """Put a system message (formatted with the sample's metadata) after any existing ones."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        position = 0
        while position < len(state.messages) and isinstance(state.messages[position], ChatMessageSystem):
            position += 1
        state.messages.insert(position, ChatMessageSystem(content=render(template, state)))
        return state

    return solve


@solver
def user_message(template: str) -> Solver:
    """Append a user message (formatted with the sample's metadata)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.append(ChatMessageUser(content=render(template, state)))
        return state

    return solve


@solver
def prompt_template(template: str, **params: Any) -> Solver:
    """Rewrite the last user message with `template`; `{prompt}` is the original text."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.replace_user_prompt(render(template, state, prompt=state.user_prompt.content, **params))
        return state

    return solve


DEFAULT_COT_TEMPLATE = (
    "{prompt}\n\nThink it through step by step, then give your final answer on the last line "
    'in the form "ANSWER: $ANSWER".'
)


@solver
def chain_of_thought(template: str = DEFAULT_COT_TEMPLATE) -> Solver:
    """Ask for step-by-step reasoning ending in an `ANSWER:` line."""

    return prompt_template(template)


_MC_ANSWER_LINE = {
    False: "'ANSWER: $LETTER' (without quotes), where $LETTER is one of {letters}",
    True: "'ANSWER: $LETTERS' (without quotes), where $LETTERS are one or more of {letters}, separated by commas",
}


def _mc_template(cot: bool, multiple_correct: bool) -> str:
    """The default multiple-choice prompt: `{question}`, `{choices}` and `{letters}` filled in."""
    intro = "Answer the following multiple choice question" + ("; more than one option may be correct." if multiple_correct else ".")
    line = _MC_ANSWER_LINE[multiple_correct]
    how = f"Think it through step by step, then end with the line {line}." if cot else f"Reply with the line {line}."
    return f"{intro} {how}\n\n{{question}}\n\n{{choices}}"




def choice_letter(index: int) -> str:
    """'A' for 0, 'B' for 1, ..."""
    return string.ascii_uppercase[index]


def format_choices(choices: list[str]) -> str:
    """One `A) text` line per choice."""
    return "\n".join(f"{choice_letter(i)}) {text}" for i, text in enumerate(choices))


def _shuffler(shuffle: bool | random.Random) -> Callable[[TaskState], random.Random] | None:
    """A fresh generator per (sample, epoch), so a rerun or a resume shows the same order."""
    if isinstance(shuffle, random.Random):
        base = shuffle.getrandbits(64)
    elif isinstance(shuffle, bool):
        if not shuffle:
            return None
        base = 0
    else:
        raise DefinitionError(f"multiple_choice(): shuffle must be True, False or a random.Random, not {shuffle!r}")
    return lambda state: random.Random(f"{base}:{state.sample_id}:{state.epoch}")


def _shuffle_choices(state: TaskState, rng: random.Random) -> None:
    """Reorder `state.choices`, recording in `choice_positions` where each came from."""
    choices = state.choices or []
    order = list(range(len(choices)))
    rng.shuffle(order)
    before = state.choice_positions or list(range(len(choices)))
    state.choices = [choices[i] for i in order]
    state.choice_positions = [before[i] for i in order]


@solver
def multiple_choice(
    *,
    template: str | None = None,
    cot: bool = False,
    multiple_correct: bool = False,
    shuffle: bool | random.Random = False,
    **config: Any,
) -> Solver:
    """Show the question with lettered options (A, B, ...) and generate; score with `choice()`.

    `template` needs `{question}` and `{choices}` (and may use `{letters}`: "A,B,C"); the
    default asks for an `ANSWER: X` line, after step-by-step reasoning with `cot`, and for one
    or more letters with `multiple_correct`. `shuffle=True` (or a `random.Random`) shows the
    options in an order drawn per (sample, epoch); `choice()` maps the reply back to the
    dataset's letters. `config` overrides GenerateConfig fields for this call.
    """
    if template is not None and not all(f"{{{name}}}" in template for name in ("question", "choices")):
        raise DefinitionError("multiple_choice(): the template needs both {question} and {choices}")
    prompt = template if template is not None else _mc_template(cot, multiple_correct)
    shuffler = _shuffler(shuffle)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if not state.choices:
            raise ValueError(f"sample {state.sample_id} has no choices for multiple_choice()")
        if len(state.choices) > len(string.ascii_uppercase):
            raise ValueError(f"sample {state.sample_id} has {len(state.choices)} choices; multiple_choice() letters 26 at most")
        if shuffler:
            _shuffle_choices(state, shuffler(state))
        letters = ",".join(choice_letter(i) for i in range(len(state.choices)))
        text = render(prompt, state, question=state.user_prompt.content, choices=format_choices(state.choices), letters=letters)
        state.replace_user_prompt(text)
        return await generate(state, **config)

    return solve
