"""Built-in solvers: generate, messages, prompt templates, chain of thought, multiple choice."""

from __future__ import annotations

import re
import string
from typing import Any

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
    """Call the model (optionally overriding GenerateConfig fields for this call)."""

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


DEFAULT_MC_TEMPLATE = (
    "Answer the following multiple choice question with the letter of the correct option.\n\n"
    "{question}\n\n{choices}\n\nAnswer with a single letter."
)


def choice_letter(index: int) -> str:
    """'A' for 0, 'B' for 1, ..."""
    return string.ascii_uppercase[index]


def format_choices(choices: list[str]) -> str:
    """One `A) text` line per choice."""
    return "\n".join(f"{choice_letter(i)}) {text}" for i, text in enumerate(choices))


@solver
def multiple_choice(template: str = DEFAULT_MC_TEMPLATE, **config: Any) -> Solver:
    """Show the question with lettered choices and generate; score with `choice()`."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if not state.choices:
            raise ValueError(f"sample {state.sample_id} has no choices for multiple_choice()")
        question = state.user_prompt.content
        state.replace_user_prompt(render(template, state, question=question, choices=format_choices(state.choices)))
        return await generate(state, **config)

    return solve
