"""Which sandbox a task or sample asks for (`"local"`, `("docker", {...})`, a spec), and the
registry of sandbox types (`local`, `docker`, and any added with `@sandboxenv`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Union

from evalkit.errors import DefinitionError

if TYPE_CHECKING:
    from evalkit.sandbox.environment import SandboxEnvironment


@dataclass(frozen=True)
class SandboxEnvironmentSpec:
    """A sandbox type and its configuration (None, a dict of the type's options, or its config object)."""

    type: str
    config: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form for the log header."""
        config = asdict(self.config) if is_dataclass(self.config) else self.config
        return {"type": self.type, "config": config}


SandboxEnvironmentType = Union[str, tuple[str, Any], SandboxEnvironmentSpec]

_TYPES: dict[str, Any] = {
    "local": "evalkit.sandbox.local:LocalSandboxEnvironment",
    "docker": "evalkit.sandbox.docker:DockerSandboxEnvironment",
}


def sandboxenv(name: str) -> Callable[[type[SandboxEnvironment]], type[SandboxEnvironment]]:
    """Register a SandboxEnvironment subclass as the sandbox type `name`."""

    def register(cls: type[SandboxEnvironment]) -> type[SandboxEnvironment]:
        _TYPES[name] = cls
        return cls

    return register


def environment_class(name: str) -> type[SandboxEnvironment]:
    """The class of sandbox type `name`."""
    found = _TYPES[name]
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        found = _TYPES[name] = getattr(import_module(module), attr)
    return found  # type: ignore[no-any-return]


def resolve_sandbox(value: SandboxEnvironmentType | None, owner: str) -> SandboxEnvironmentSpec | None:
    """`value` as a spec with its config parsed; a wrong shape, an unknown type or a bad option
    raises DefinitionError naming `owner` (e.g. "Task")."""
    if value is None or isinstance(value, SandboxEnvironmentSpec):
        spec = value
    elif isinstance(value, str):
        spec = SandboxEnvironmentSpec(value)
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        spec = SandboxEnvironmentSpec(*value)
    else:
        raise DefinitionError(f"{owner} sandbox must be a type name such as \"local\", a (type, config) pair or a "
                              f"SandboxEnvironmentSpec (got {type(value).__name__} {value!r:.60})")
    if spec is None:
        return None
    if spec.type not in _TYPES:
        raise DefinitionError(f"{owner} sandbox: unknown type {spec.type!r} (known: {', '.join(sorted(_TYPES))})")
    return SandboxEnvironmentSpec(spec.type, environment_class(spec.type).parse_config(spec.config))
