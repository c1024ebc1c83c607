"""The tool the tool-calling tests offer, and the parameter schema evalkit derives for it."""

from __future__ import annotations

from typing import Any

from evalkit.tool import tool


@tool
def add() -> Any:
    async def execute(x: int, y: int = 0) -> int:
        """Add two whole numbers.

        Args:
            x: The first number.
            y: The second number.
        """
        return x + y

    return execute


ADD_PARAMETERS = {
    "type": "object",
    "properties": {"x": {"type": "integer", "description": "The first number."},
                   "y": {"type": "integer", "description": "The second number.", "default": 0}},
    "required": ["x"],
}
"""The JSON schema of `add`'s parameters, as every provider is sent it."""
