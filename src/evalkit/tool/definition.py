"""`@tool`: functions the model may call, as Inspect writes them."""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Awaitable, Callable, Protocol, Union

from evalkit.errors import DefinitionError
from evalkit.model.content import ContentImage, ContentText
from evalkit.registration import callable_name, registering, registration
from evalkit.tool.schema import function_schema
from evalkit.tool.types import ToolInfo

_CACHE_ATTR = "__evalkit_tool_def__"
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

ToolResult = Union[str, int, float, bool, ContentText, ContentImage, list[Union[ContentText, ContentImage]]]


class Tool(Protocol):
    """What a `@tool` factory returns: `async def execute(...) -> ToolResult`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[ToolResult]: ...


class ToolError(Exception):
    """Raise inside a tool for an error the model should see (and may recover from)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def tool(name: Callable[..., Tool] | str | None = None, *, parallel: bool = True) -> Any:
    """Register a tool factory: `@tool` or `@tool(name="...", parallel=False)`. The factory
    returns `async def execute(...)`; its type hints and Google-style docstring (the summary
    and an `Args:` entry per parameter) become the schema the model sees. `parallel=False`:
    calls to it in one turn run one after another."""
    if callable(name):
        return registering("tool", None, {"parallel": parallel})(name)
    return registering("tool", name, {"parallel": parallel})


@dataclass(frozen=True)
class ToolDef:
    """A tool ready to offer: the function to run, and the name, description and parameter
    schema the model sees. Build one from a `@tool` or any async function."""

    execute: Callable[..., Awaitable[ToolResult]]
    name: str
    description: str
    parameters: dict[str, Any]
    parallel: bool = True

    @classmethod
    def of(cls, tool: Tool | ToolDef, *, name: str | None = None, description: str | None = None) -> ToolDef:
        """The definition of a `@tool` (or a plain async function, named after itself)."""
        if isinstance(tool, ToolDef):
            return tool
        cached = getattr(tool, _CACHE_ATTR, None)
        if cached is not None and name is None and description is None:
            return cached  # type: ignore[no-any-return]
        made = cls._build(tool, name, description)
        if name is None and description is None:
            try:
                setattr(tool, _CACHE_ATTR, made)
            except AttributeError:
                pass  # a bound method takes no attributes: it is described again next time
        return made

    @classmethod
    def _build(cls, tool: Tool, name: str | None, description: str | None) -> ToolDef:
        if not inspect.iscoroutinefunction(tool):
            raise DefinitionError(f"tool {callable_name(tool)!r} must be an async function: `async def execute(...)`")
        found = registration(tool)
        tool_name = name or (found.name if found else getattr(tool, "__name__", callable_name(tool)))
        if not _TOOL_NAME.fullmatch(tool_name):
            raise DefinitionError(f"tool name {tool_name!r}: use 1-64 letters, digits, _ or - (what model APIs accept)")
        try:
            schema = function_schema(tool)
        except TypeError as ex:
            raise DefinitionError(f"tool {tool_name!r}: {ex}") from None
        if schema.undescribed:
            warnings.warn(f"tool '{tool_name}': the docstring has no Args: entry for "
                          f"{', '.join(schema.undescribed)}; the model sees no description of it", UserWarning, stacklevel=2)
        return cls(tool, tool_name, description or schema.description, schema.parameters,
                   found.extras.get("parallel", True) if found else True)

    @property
    def info(self) -> ToolInfo:
        """What a provider sends for this tool."""
        return ToolInfo(self.name, self.description, self.parameters)


def tool_infos(tools: Sequence[Tool | ToolDef | ToolInfo]) -> list[ToolInfo]:
    """What a provider is sent for each tool."""
    return [t if isinstance(t, ToolInfo) else ToolDef.of(t).info for t in tools]
