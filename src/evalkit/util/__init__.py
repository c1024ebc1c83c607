"""Utilities for solvers, tools and scorers (Inspect's `inspect_ai.util`)."""

from evalkit.sandbox import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentLimits,
    SandboxEnvironmentSpec,
    sandbox,
    sandboxenv,
)

__all__ = [
    "ExecResult", "OutputLimitExceededError", "SandboxEnvironment", "SandboxEnvironmentLimits",
    "SandboxEnvironmentSpec", "sandbox", "sandboxenv",
]
