"""Tools the model may call: `@tool`, their definitions, calls, results and errors.

Names are imported on first use: the model layer imports `evalkit.tool.types` while the
rest of this package imports the model layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "evalkit.tool.code": ["bash", "python"],
    "evalkit.tool.execute": ["execute_tools"],
    "evalkit.tool.definition": ["Tool", "ToolDef", "ToolError", "ToolResult", "tool"],
    "evalkit.tool.types": ["ToolCall", "ToolCallError", "ToolChoice", "ToolFunction", "ToolInfo"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit.tool' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from evalkit.tool.code import bash, python
    from evalkit.tool.execute import execute_tools
    from evalkit.tool.definition import Tool, ToolDef, ToolError, ToolResult, tool
    from evalkit.tool.types import ToolCall, ToolCallError, ToolChoice, ToolFunction, ToolInfo
