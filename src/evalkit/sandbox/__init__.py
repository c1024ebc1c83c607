"""Sandboxes (Inspect's shape): each sample's own environment to run commands and keep files.

`Task(sandbox="local")` (or `"docker"`, or `("docker", {"image": ...})`) gives every sample a
fresh environment; `sandbox()` returns it inside solvers, tools and scorers.
"""

from evalkit.sandbox.context import NoSandboxError, sandbox, sample_sandbox
from evalkit.sandbox.environment import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentLimits,
)
from evalkit.sandbox.spec import SandboxEnvironmentSpec, SandboxEnvironmentType, resolve_sandbox, sandboxenv

__all__ = [
    "ExecResult", "NoSandboxError", "OutputLimitExceededError", "SandboxEnvironment", "SandboxEnvironmentLimits",
    "SandboxEnvironmentSpec", "SandboxEnvironmentType", "resolve_sandbox", "sample_sandbox", "sandbox", "sandboxenv",
]
