"""Names and arguments of decorated solvers, scorers, metrics and reducers.

`@solver`, `@scorer`, `@metric` and `@score_reducer` wrap a factory function; each object the
factory returns carries a `Registration` (its kind, name and the arguments it was made with),
which the log header records and eval-retry compares.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REGISTRATION_ATTR = "__evalkit_registration__"


@dataclass(frozen=True)
class Registration:
    """What a decorated factory made: its kind, name, arguments and kind-specific extras."""

    kind: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The JSON form for the log header: name and arguments."""
        return {"name": self.name, "args": self.args}


def registration(obj: Any) -> Registration | None:
    """The registration of a decorated object, or None."""
    return getattr(obj, REGISTRATION_ATTR, None)


def describe(obj: Any) -> dict[str, Any]:
    """Name and arguments of a solver/scorer, decorated or not (plain functions: their name)."""
    found = registration(obj)
    return found.describe() if found else {"name": callable_name(obj), "args": {}}


def callable_name(obj: Any) -> str:
    """A readable, stable name for a function or callable object."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return name.replace(".<locals>", "")


def json_safe(value: Any) -> Any:
    """`value` as JSON: numbers (inf and nan as strings), strings, lists and dicts as they
    are; decorated objects as their name and arguments; other callables by name; anything
    else by type (never an address, so the same task always describes itself the same way)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "nan": JSON has no such numbers, and the log must read back equal
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    found = registration(value)
    if found is not None:
        return found.describe()
    if callable(value):
        return callable_name(value)
    return f"<{type(value).__qualname__}>"


def bound_args(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a factory call, defaults included, as JSON-safe values."""
    try:
        bound = inspect.signature(factory).bind(*args, **kwargs)
    except TypeError:
        return json_safe(kwargs)
    bound.apply_defaults()
    values: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        else:
            values[name] = value
    return json_safe(values)


def attach(obj: F, info: Registration) -> F:
    """Mark `obj` with `info`; a function already marked is wrapped first, so one shared
    function returned by two factories keeps two registrations."""
    if registration(obj) is not None:
        original = obj

        if inspect.iscoroutinefunction(original):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await original(*args, **kwargs)
        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                return original(*args, **kwargs)

        obj = functools.update_wrapper(wrapper, original)  # type: ignore[assignment]
    try:
        setattr(obj, REGISTRATION_ATTR, info)
    except AttributeError:
        raise TypeError(f"cannot register {obj!r}: return a function from a @{info.kind} factory") from None
    return obj


def registering(kind: str, name: str | None, extras: dict[str, Any] | None = None) -> Callable[[F], F]:
    """A decorator for factories of `kind`: each call's result is registered under `name`
    (default: the factory's name) with the call's arguments."""

    def decorate(factory: F) -> F:
        registered_name = name or factory.__name__

        @functools.wraps(factory)
        def create(*args: Any, **kwargs: Any) -> Any:
            made = factory(*args, **kwargs)
            info = Registration(kind, registered_name, bound_args(factory, args, kwargs), dict(extras or {}))
            return attach(made, info)

        return create  # type: ignore[return-value]

    return decorate


def unique_names(names: list[str]) -> list[str]:
    """`["match", "match", "f1"]` -> `["match", "match1", "f1"]` (Inspect's numbering)."""
    taken: set[str] = set()
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate in taken:
            count += 1
            candidate = f"{name}{count}"
        taken.add(candidate)
        unique.append(candidate)
    return unique
