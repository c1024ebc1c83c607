"""`basic_agent`: a ReAct-style loop of reasoning and tool calls that ends when the model
calls `submit()` (Inspect's basic agent)."""

from __future__ import annotations

from evalkit.model.types import ChatMessage, ChatMessageTool, ChatMessageUser
from evalkit.scorer.score import value_to_float
from evalkit.scorer.scoring import score
from evalkit.solver.builtins import system_message
from evalkit.solver.solver import Generate, Solver, run_solver, solver
from evalkit.solver.state import TaskState
from evalkit.tool.definition import Tool, ToolDef

DEFAULT_SYSTEM_MESSAGE = (
    "You are a helpful assistant attempting to answer a question. You may use the tools you have to "
    "work it out, step by step. When you have the final answer, call the {submit}() tool with it; "
    "only your first {submit}() call per attempt is evaluated."
)
DEFAULT_CONTINUE_MESSAGE = "Please proceed to the next step using your best judgement. If you have the answer, call the {submit}() tool."
DEFAULT_INCORRECT_MESSAGE = "Your submission was incorrect. Please think again and submit another answer."
DEFAULT_MESSAGE_LIMIT = 50


@solver
def basic_agent(
    *,
    init: Solver | list[Solver] | None = None,
    tools: list[Tool | ToolDef] | None = None,
    max_attempts: int = 1,
    message_limit: int | None = None,
    token_limit: int | None = None,
    continue_message: str = DEFAULT_CONTINUE_MESSAGE,
    incorrect_message: str = DEFAULT_INCORRECT_MESSAGE,
    submit_name: str = "submit",
    submit_description: str = "Submit an answer for evaluation.",
) -> Solver:
    """Reason and call tools until the model calls `submit(answer)`; its answer becomes the
    output's completion. With `max_attempts` > 1 a submission the task's scorers find
    incorrect gets `incorrect_message` and another try. `init` runs first (default: a system
    message about submitting). The message limit is the task's, else 50."""
    submit_tool = ToolDef.of(_submit, name=submit_name, description=submit_description)
    init_steps = init if isinstance(init, list) else [init or system_message(DEFAULT_SYSTEM_MESSAGE.format(submit=submit_name))]

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        for step in init_steps:
            state = await run_solver(step, state, generate)
        state.tools = [*(tools or []), submit_tool]
        state.tool_choice = "auto"
        state.message_limit = message_limit or state.message_limit or DEFAULT_MESSAGE_LIMIT
        state.token_limit = token_limit or state.token_limit
        attempts = 0
        while True:
            before = len(state.messages)
            state = await generate(state, tool_calls="single")
            answer = _submitted(state.messages[before:], submit_name)
            if answer is None:
                if not state.output or not state.output.message.tool_calls:
                    state.messages.append(ChatMessageUser(content=continue_message.format(submit=submit_name)))
                continue
            state.output.completion = answer  # type: ignore[union-attr]
            attempts += 1
            if attempts >= max_attempts or await _correct(state):
                return state
            state.messages.append(ChatMessageUser(content=incorrect_message))

    return solve


async def _submit(answer: str) -> str:
    """Submit an answer for evaluation.

    Args:
        answer: The answer.
    """
    return answer


def _submitted(new_messages: list[ChatMessage], submit_name: str) -> str | None:
    """The answer of the first successful submit call among a turn's new messages."""
    for message in new_messages:
        if isinstance(message, ChatMessageTool) and message.function == submit_name and message.error is None:
            return message.text
    return None


async def _correct(state: TaskState) -> bool:
    """Whether every task scorer gives the current answer full marks."""
    return all(value_to_float()(s.value) >= 1.0 for s in await score(state))
