"""`use_tools`: offer tools to the model for the rest of a sample's solvers."""

from __future__ import annotations

from evalkit.solver.solver import Generate, Solver, solver
from evalkit.solver.state import TaskState
from evalkit.tool.definition import Tool, ToolDef
from evalkit.tool.types import ToolChoice


@solver
def use_tools(*tools: Tool | ToolDef | list[Tool | ToolDef], tool_choice: ToolChoice | None = "auto", append: bool = False) -> Solver:
    """Set the tools `generate()` offers (a list counts as its tools); `append=True` adds
    them to those already set. `tool_choice`: "auto", "any", "none" or ToolFunction(name)."""
    flat = [t for each in tools for t in (each if isinstance(each, list) else [each])]
    definitions = [ToolDef.of(t) for t in flat]  # a tool that cannot be described fails here, once

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.tools = [*state.tools, *definitions] if append else list(definitions)
        state.tool_choice = tool_choice
        return state

    return solve
