"""Tool use: arithmetic questions the model may answer with a calculator tool.

    evalkit eval tasks/tool_use.py --model openai/gpt-4o -T n=20
    evalkit eval tasks/tool_use.py --model anthropic/claude-sonnet-4-0 -T agent=true

With `agent=true` a ReAct-style `basic_agent` works until it calls `submit()`; otherwise
`use_tools` + `generate()` run the tool loop until the model stops calling the tool.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from evalkit import Task, task
from evalkit.scorer import match
from evalkit.solver import basic_agent, generate, system_message, use_tools
from evalkit.tool import ToolError, tool

from arithmetic import make_samples

_OPERATORS: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                               ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ToolError(f"only numbers and + - * / ** are allowed, not {ast.dump(node)[:60]}")


@tool
def calculator() -> Any:
    async def execute(expression: str) -> str:
        """Evaluate an arithmetic expression.

        Args:
            expression: The expression, e.g. "12 * (3 + 4)".
        """
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError:
            raise ToolError(f"not an arithmetic expression: {expression!r}") from None
        try:
            value = _evaluate(tree.body)
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        return f"{value:g}" if isinstance(value, float) else str(value)

    return execute


@task
def tool_use(n: int = 20, max_operand: int = 1000, seed: int = 0, agent: bool = False) -> Task:
    """Large-number arithmetic with a calculator; the last number in the answer must equal the result."""
    solver = (basic_agent(tools=[calculator()]) if agent else
              [system_message("Use the calculator for arithmetic, then answer with the number only."),
               use_tools(calculator()), generate()])
    return Task(dataset=make_samples(n, max_operand, seed), solver=solver, scorer=match(numeric=True),
                config={"temperature": 0.0}, message_limit=20)
