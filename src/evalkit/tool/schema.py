"""A tool's JSON schema from its `execute` function: type hints give the types, a
Google-style docstring the descriptions."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from typing import Any, Callable, Literal, Union

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$")
_ARG = re.compile(r"^(?P<name>\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


@dataclasses.dataclass(frozen=True)
class Docstring:
    """What a Google-style docstring says: the summary and each argument's description."""

    description: str
    args: dict[str, str]


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into its description and its `Args:` entries."""
    lines = inspect.cleandoc(doc or "").splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    section = None
    current: str | None = None
    arg_indent = None
    for line in lines:
        heading = _SECTION.match(line)
        if heading:
            section, current, arg_indent = heading.group(1), None, None
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments", "Parameters") and line.strip():
            indent = len(line) - len(line.lstrip())
            found = _ARG.match(line.strip())
            if found and (arg_indent is None or indent <= arg_indent):
                arg_indent, current = indent, found.group("name").lstrip("*")
                args[current] = found.group("text").strip()
            elif current is not None:
                args[current] = f"{args[current]} {line.strip()}".strip()
    return Docstring(" ".join(" ".join(description).split()), args)


def json_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a Python type hint (str, int, float, bool, None, list, dict, tuple,
    Literal, Enum, Optional/Union, dataclasses and TypedDicts)."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
    if hint in simple:
        return {"type": simple[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        options = [json_schema(a) for a in args]
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if hint in (list, set, tuple) or origin in (list, set, frozenset, tuple, typing.Sequence, typing.Iterable):
        return {"type": "array", "items": json_schema(args[0]) if args else {}}
    if hint is dict or origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1]) if len(args) == 2 else {}}
    if dataclasses.is_dataclass(hint) or typing.is_typeddict(hint):
        return _object_schema(hint)
    raise TypeError(f"type {hint!r} has no JSON schema (use str, int, float, bool, list, dict, Literal, Enum or a dataclass)")


def _object_schema(hint: type) -> dict[str, Any]:
    hints = typing.get_type_hints(hint)
    if dataclasses.is_dataclass(hint):
        required = [f.name for f in dataclasses.fields(hint)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    else:
        required = sorted(getattr(hint, "__required_keys__", hints))
    return {"type": "object", "properties": {name: json_schema(h) for name, h in hints.items()}, "required": required}


@dataclasses.dataclass(frozen=True)
class FunctionSchema:
    """A function as a tool: its description, the JSON schema of its parameters, and the
    parameters its docstring does not describe."""

    description: str
    parameters: dict[str, Any]
    undescribed: list[str]


def function_schema(function: Callable[..., Any]) -> FunctionSchema:
    """Describe `function`'s parameters as a JSON schema object."""
    doc = parse_docstring(inspect.getdoc(function))
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    undescribed: list[str] = []
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        schema = json_schema(hints.get(name, param.annotation))
        if name in doc.args:
            schema["description"] = doc.args[name]
        else:
            undescribed.append(name)
        if param.default is inspect.Parameter.empty:
            required.append(name)
        elif isinstance(param.default, (str, int, float, bool)):
            schema["default"] = param.default
        properties[name] = schema
    return FunctionSchema(doc.description, {"type": "object", "properties": properties, "required": required}, undescribed)
