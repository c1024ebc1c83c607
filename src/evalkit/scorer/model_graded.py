"""`model_graded_qa()` and `model_graded_fact()`: a model (or a panel of models) grades the reply."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any, Union

import anyio

from evalkit.errors import DefinitionError
from evalkit.model.model import Model, get_model
from evalkit.model.types import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, message_to_dict
from evalkit.scorer.common import compile_pattern, completion
from evalkit.scorer.metric import accuracy, stderr
from evalkit.scorer.reducer import mode_score
from evalkit.scorer.score import CORRECT, INCORRECT, PARTIAL, Score, Target
from evalkit.scorer.scorer import Scorer, scorer
from evalkit.solver.state import TaskState

GraderSpec = Union[str, Model, None, Sequence[Union[str, Model]]]
"""Who grades: None (the "grader" role, else the evaluated model), "provider/model", a Model,
or a list of them (each grades and the majority decides)."""

History = Union[bool, Callable[[TaskState], str]]

DEFAULT_GRADE_PATTERN = r"(?i)GRADE\s*:\s*([CPI])"
"""The letter C, P or I after "GRADE:" (any case, spaces allowed around the colon)."""

QA_TEMPLATE = """Your job is to judge whether a response to a task satisfies a criterion.

=== TASK ===
{question}

=== RESPONSE ===
{answer}

=== CRITERION ===
{criterion}

Judge whether the response satisfies the criterion.

{instructions}
"""
"""The default prompt of `model_graded_qa()`."""

FACT_TEMPLATE = """Your job is to check whether a response states the same facts as a reference answer.

=== QUESTION ===
{question}

=== REFERENCE ANSWER ===
{criterion}

=== RESPONSE ===
{answer}

Look only at the facts: wording, style, grammar and punctuation do not matter. Judge whether
the response contains what the reference answer says.

{instructions}
"""
"""The default prompt of `model_graded_fact()`."""

TEMPLATE_FIELDS = ("question", "answer", "criterion", "instructions")
"""The variables every template gets; sample metadata fields of these names are not used."""


def default_instructions(partial_credit: bool) -> str:
    """The grading instructions used when none are given: reason first, then end with
    `GRADE: C` or `GRADE: I` (or `GRADE: P` for a partly right response, with partial_credit)."""
    letters = "C, P or I" if partial_credit else "C or I"
    partial = "P if it is partly right, " if partial_credit else ""
    return (
        "Think it through step by step before deciding, and do not start with the verdict. "
        f"Then finish with a last line of the form GRADE: X, where X is one of {letters}: "
        f"C if the response is right, {partial}I if it is wrong. For example: GRADE: C"
    )


@scorer(metrics=[accuracy(), stderr()])
def model_graded_qa(
    template: str | None = None,
    instructions: str | None = None,
    grade_pattern: str | None = None,
    include_history: History = False,
    partial_credit: bool = False,
    model: GraderSpec = None,
) -> Scorer:
    """Have a model grade an open-ended answer against the target, used as the criterion.

    The template's variables: {question} (the sample input, or the conversation with
    `include_history`), {answer} (the reply), {criterion} (the target), {instructions}, and
    every sample metadata field. The grade is the letter `grade_pattern` captures (C, I, or P
    with `partial_credit`); a reply without one is INCORRECT. `model`: None (the "grader"
    role, else the evaluated model), "provider/model", a Model, or a list (majority vote; a
    tie goes to the grade the earliest grader in the list gave). The grader's prompt and reply
    are in the score's metadata ("grading") and its explanation.
    """
    return _model_graded(template or QA_TEMPLATE, instructions, grade_pattern, include_history, partial_credit, model)


@scorer(metrics=[accuracy(), stderr()])
def model_graded_fact(
    template: str | None = None,
    instructions: str | None = None,
    grade_pattern: str | None = None,
    include_history: History = False,
    partial_credit: bool = False,
    model: GraderSpec = None,
) -> Scorer:
    """Have a model check that the answer contains the facts of the target (the
    {criterion}); otherwise as `model_graded_qa()`."""
    return _model_graded(template or FACT_TEMPLATE, instructions, grade_pattern, include_history, partial_credit, model)


def _model_graded(
    template: str, instructions: str | None, grade_pattern: str | None, include_history: History,
    partial_credit: bool, model: GraderSpec,
) -> Scorer:
    _check_template(template)
    pattern = compile_pattern(grade_pattern or DEFAULT_GRADE_PATTERN, 0, "model graded scorer: grade_pattern",
                              "needs a capture group around the grade letter")
    allowed = {CORRECT, INCORRECT, PARTIAL} if partial_credit else {CORRECT, INCORRECT}
    graders = [_Grader(m) for m in (model if isinstance(model, (list, tuple)) else [model])]
    if not graders:
        raise DefinitionError("model graded scorer: model=[] names no grader; give at least one, or None for the grader role")
    filled_instructions = instructions or default_instructions(partial_credit)
    vote = mode_score()

    async def score(state: TaskState, target: Target) -> Score:
        prompt = _fill(template, state, target, filled_instructions, include_history)
        grades = await _grade_all([g.model() for g in graders], prompt, pattern, allowed, completion(state))
        if len(grades) == 1:
            return grades[0]
        return Score(
            vote(grades).value,
            answer=completion(state),
            explanation="\n\n".join(f"[{g.metadata['grader']}: {g.value}]\n{g.explanation}" for g in grades),
            metadata={"votes": [g.metadata for g in grades]},
        )

    return score


class _Grader:
    """One grader: a Model, a model name made into a Model once and reused, or None for the
    "grader" role (looked up in the running eval each time)."""

    def __init__(self, spec: str | Model | None) -> None:
        if spec is not None and not isinstance(spec, (str, Model)):
            raise DefinitionError(f"model graded scorer: model must be 'provider/model', a Model or a list of them (got {spec!r})")
        self.spec = spec
        self.created: Model | None = spec if isinstance(spec, Model) else None

    def model(self) -> Model:
        if self.spec is None:
            return get_model(role="grader")
        if self.created is None:
            self.created = get_model(self.spec)
        return self.created


async def _grade_all(models: list[Model], prompt: str, pattern: re.Pattern[str], allowed: set[str], answer: str) -> list[Score]:
    """Each model's grade, asked of all of them at once, in the order of `models`; the first
    grader's error (in that order) is raised as it is once all have finished."""
    outcomes: dict[int, Score | Exception] = {}

    async def grade_with(index: int) -> None:
        try:
            outcomes[index] = await _grade(models[index], prompt, pattern, allowed, answer)
        except Exception as error:
            outcomes[index] = error

    async with anyio.create_task_group() as group:
        for index in range(len(models)):
            group.start_soon(grade_with, index)
    grades = []
    for index in range(len(models)):
        outcome = outcomes[index]
        if isinstance(outcome, Exception):
            raise outcome
        grades.append(outcome)
    return grades


async def _grade(model: Model, prompt: str, pattern: re.Pattern[str], allowed: set[str], answer: str) -> Score:
    """Ask `model` to grade and read its grade (INCORRECT when it gave none that counts)."""
    reply = (await model.generate(prompt)).completion
    found = pattern.search(reply)
    letter = found.group(1).upper() if found else None
    metadata: dict[str, Any] = {
        "grader": model.name,
        "grading": [message_to_dict(ChatMessageUser(content=prompt)), message_to_dict(ChatMessageAssistant(content=reply))],
    }
    if letter in allowed:
        return Score(letter, answer=answer, explanation=reply, metadata=metadata)
    why = "no grade found in the grader's reply" if letter is None else f"grade {letter} is not allowed here (partial_credit=False)"
    return Score(INCORRECT, answer=answer, explanation=f"{why}: {reply}", metadata=metadata)


def _fill(template: str, state: TaskState, target: Target, instructions: str, include_history: History) -> str:
    """The grader's prompt: the template with the standard variables and the sample metadata."""
    variables = {"question": _question(state, include_history), "answer": completion(state),
                 "criterion": target.text, "instructions": instructions}
    try:
        return template.format(**{**state.metadata, **variables})  # the standard variables win
    except KeyError as missing:
        raise DefinitionError(
            f"model graded scorer: the template uses {{{missing.args[0]}}}, which is neither one of "
            f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)} nor a metadata field of sample {state.sample_id!r}"
        ) from None


def _question(state: TaskState, include_history: History) -> str:
    if callable(include_history):
        return include_history(state)
    return chat_history(state) if include_history else state.input_text


def chat_history(state: TaskState) -> str:
    """The conversation before the last reply, without system messages: the first message as
    it is, then each later one as "User: ..." or "Assistant: ..."."""
    messages = [m for m in state.messages if not isinstance(m, ChatMessageSystem)]
    last_reply = max((i for i, m in enumerate(messages) if isinstance(m, ChatMessageAssistant)), default=len(messages))
    shown = messages[:last_reply]
    if not shown:
        return state.input_text
    later = [f"{'User' if isinstance(m, ChatMessageUser) else 'Assistant'}: {m.content}" for m in shown[1:]]
    return "\n\n".join([shown[0].content, *later])


def _check_template(template: str) -> None:
    try:
        list(string.Formatter().parse(template))
    except ValueError as error:
        raise DefinitionError(f"model graded scorer: the template is not a valid format string ({error}); write a literal brace as {{{{ or }}}}") from None


