"""The interface every sandbox implements (Inspect's `SandboxEnvironment`), its results and limits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar, overload

from evalkit.errors import DefinitionError

C = TypeVar("C")


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a sandbox returned: `success` is `returncode == 0`."""

    success: bool
    returncode: int
    stdout: str
    stderr: str


class SandboxEnvironmentLimits:
    """Default size limits of sandbox output (Inspect's values)."""

    MAX_EXEC_OUTPUT_SIZE = 10 * 1024 * 1024
    """Bytes of stdout (and, separately, of stderr) an `exec` keeps before it stops the command."""

    MAX_READ_FILE_SIZE = 100 * 1024 * 1024
    """Bytes `read_file` returns at most."""


class OutputLimitExceededError(Exception):
    """A command printed, or a file held, more than the limit; `truncated_output` keeps the start."""

    def __init__(self, limit_str: str, truncated_output: str | None) -> None:
        stopped = " (the command was stopped)" if truncated_output is not None else ""
        super().__init__(f"the output exceeded the limit of {limit_str}{stopped}")
        self.limit_str = limit_str
        self.truncated_output = truncated_output


class SandboxEnvironment(ABC):
    """One sample's environment: run commands, read and write files; `cleanup` removes it.

    `exec` raises TimeoutError when `timeout` (seconds) passes, and OutputLimitExceededError
    when stdout or stderr grows past `SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE`.
    """

    @abstractmethod
    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: int | None = None,
    ) -> ExecResult:
        """Run `cmd` (no shell) with `input` on stdin (else stdin is closed)."""

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    @abstractmethod
    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        """A file's contents (a path relative to the working folder, or absolute inside it)."""

    @abstractmethod
    async def write_file(self, file: str, contents: str | bytes) -> None:
        """Write a file, creating its parent folders."""

    @abstractmethod
    async def cleanup(self) -> None:
        """Stop everything still running in the environment and remove it."""

    @classmethod
    @abstractmethod
    async def create(cls, config: Any) -> SandboxEnvironment:
        """A fresh environment for one sample, made from the (parsed) `config`."""

    @classmethod
    def parse_config(cls, config: Any) -> Any:
        """The spec's `config` checked and in the form `create` takes (called when a task is made)."""
        return config


def config_from(kind: type[C], config: C | dict[str, Any] | None, sandbox_type: str) -> C:
    """A dataclass config from None (its defaults), a dict of its fields, or itself."""
    if config is None:
        return kind()
    if isinstance(config, kind):
        return config
    options = {f.name: f.default for f in fields(kind)}  # type: ignore[arg-type]
    listed = ", ".join(options)
    if not isinstance(config, dict):
        raise DefinitionError(f"{sandbox_type} sandbox config must be a dict of options ({listed}), got {type(config).__name__}")
    for key, value in config.items():
        if key not in options:
            raise DefinitionError(f"{sandbox_type} sandbox config: unknown option {key!r} (options: {listed})")
        if not _same_kind(value, options[key]):
            raise DefinitionError(f"{sandbox_type} sandbox config: {key} must be like {options[key]!r} (got {value!r})")
    return kind(**config)


def size_text(size: int) -> str:
    """`10 MiB`, `512 KiB`, `12 bytes`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
