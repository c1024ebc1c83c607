"""The models a running (task, model) pair uses: the one evaluated and its roles (grader, ...),
and the tokens each of them spent in that run."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalkit.model.types import ModelUsage

if TYPE_CHECKING:
    from evalkit.model.model import Model


@dataclass
class ActiveModels:
    """The evaluated model, the role models by role name, and usage per model name."""

    model: Model
    roles: dict[str, Model]
    usage: dict[str, ModelUsage] = field(default_factory=dict)

    def add_usage(self, model_name: str, usage: ModelUsage | None) -> None:
        """Count `usage` for `model_name`."""
        if usage is None:
            return
        total = self.usage.get(model_name)
        if total is None:
            total = self.usage[model_name] = ModelUsage()
        total.add(usage)

    def usage_by_model(self) -> dict[str, dict[str, int]]:
        """Tokens per model name: the evaluated model first, then each role's (zeros included)."""
        names = dict.fromkeys([self.model.name, *(m.name for m in self.roles.values())])
        return {name: self.usage.get(name, ModelUsage()).to_dict() for name in names}


_active: contextvars.ContextVar[ActiveModels | None] = contextvars.ContextVar("evalkit_active_models", default=None)


@contextmanager
def running(active: ActiveModels) -> Iterator[None]:
    """Make `active` what `get_model(role=...)` finds in this context (and the tasks started
    in it), and count every request's usage per model there."""
    token = _active.set(active)
    try:
        yield
    finally:
        _active.reset(token)


def current() -> ActiveModels | None:
    """The models of the running (task, model) pair, or None outside a run."""
    return _active.get()


def record_usage(model_name: str, usage: ModelUsage | None) -> None:
    """Count a request's usage for the running pair, if any."""
    active = _active.get()
    if active is not None:
        active.add_usage(model_name, usage)
