"""The sample's sandbox: made before the solver, cleaned up after scoring, and what
`sandbox()` returns in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

import anyio

from evalkit.errors import EvalkitError
from evalkit.sandbox.environment import SandboxEnvironment
from evalkit.sandbox.spec import SandboxEnvironmentSpec, environment_class

_CLEANUP_SECONDS = 60.0
_current: ContextVar[SandboxEnvironment | None] = ContextVar("evalkit_sandbox", default=None)


class NoSandboxError(EvalkitError, ProcessLookupError):
    """`sandbox()` called outside a sample, or in a task that declares no sandbox."""


def sandbox(name: str | None = None) -> SandboxEnvironment:
    """The current sample's sandbox environment (`name`: only the default one exists)."""
    current = _current.get()
    if current is None:
        raise NoSandboxError(
            "no sandbox for this sample: sandbox() works inside the solvers, tools and scorers of a task "
            "made with sandbox=\"local\" or sandbox=\"docker\" (on the Task or the Sample)"
        )
    if name not in (None, "default"):
        raise NoSandboxError(f"no sandbox named {name!r}: a sample has one sandbox, sandbox() or sandbox(\"default\")")
    return current


@asynccontextmanager
async def sample_sandbox(spec: SandboxEnvironmentSpec | None) -> AsyncIterator[SandboxEnvironment | None]:
    """The sandbox of one sample while the block runs (None: the sample has none); it is
    cleaned up however the block ends, cancellation included."""
    if spec is None:
        yield None
        return
    environment = await environment_class(spec.type).create(spec.config)
    token = _current.set(environment)
    try:
        yield environment
    finally:
        _current.reset(token)
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_SECONDS):
            await environment.cleanup()
