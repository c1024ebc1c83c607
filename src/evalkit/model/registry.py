"""Provider registry on pluggy: built-in and third-party providers register the same way."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from evalkit.errors import ModelNotFoundError

hookspec = pluggy.HookspecMarker("evalkit")
hookimpl = pluggy.HookimplMarker("evalkit")

Factory = Callable[..., Any]


class ProviderSpec:
    """The hook every provider plugin implements."""

    @hookspec
    def evalkit_providers(self, register: Callable[..., None]) -> None:
        """Call `register(name, factory, *, summary, needs, env, pip)` once per provider.

        `factory` is a `module:attr` path or a callable returning a `ModelAPI` class; it must
        import its SDK lazily, so registering never imports an SDK.
        """


@dataclass(frozen=True)
class ProviderInfo:
    """A registered provider."""

    name: str
    factory: str | Factory
    summary: str = ""
    needs: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    pip: str = ""
    plugin: str = field(default="evalkit", compare=False)

    def sdk_installed(self) -> bool:
        """Whether every module in `needs` can be imported."""
        return all(importlib.util.find_spec(module) is not None for module in self.needs)

    def load(self) -> type:
        """The provider's ModelAPI class (imports its module now)."""
        if callable(self.factory):
            return self.factory()
        module_name, _, attr = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as ex:
            hint = f" Install it with: pip install {self.pip}" if self.pip else ""
            raise ModelNotFoundError(
                f"provider '{self.name}' needs a package that is not installed ({ex.name or ex}).{hint}"
            ) from ex
        return getattr(module, attr)


# A few providers that other packages add, so an unknown name can say what to install.
KNOWN_ELSEWHERE = {"echo": "evalkit-echo (see plugins/evalkit-echo in the evalkit repository)"}

_registry: dict[str, ProviderInfo] | None = None


def _collect() -> dict[str, ProviderInfo]:
    from evalkit.providers import builtin

    manager = pluggy.PluginManager("evalkit")
    manager.add_hookspecs(ProviderSpec)
    manager.register(builtin, name="evalkit-builtin")
    manager.load_setuptools_entrypoints("evalkit")
    providers: dict[str, ProviderInfo] = {}
    for plugin_name, plugin in manager.list_name_plugin():
        impl = getattr(plugin, "evalkit_providers", None)
        if impl is None:
            continue

        def register(
            name: str,
            factory: str | Factory,
            *,
            summary: str = "",
            needs: tuple[str, ...] | list[str] = (),
            env: tuple[str, ...] | list[str] = (),
            pip: str = "",
            _plugin: str = plugin_name,
        ) -> None:
            providers[name] = ProviderInfo(name, factory, summary, tuple(needs), tuple(env), pip, _plugin)

        impl(register=register)
    return providers


def providers() -> dict[str, ProviderInfo]:
    """Every registered provider by name (collected once per process)."""
    global _registry
    if _registry is None:
        _registry = _collect()
    return _registry


def split_model_name(model: str) -> tuple[str, str]:
    """Split `provider/model` at the first `/`; the model part keeps any qualifiers."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise ModelNotFoundError(
            f"model '{model}' must be written provider/model, e.g. openai/gpt-4o or mockllm/model "
            "(run 'evalkit list providers' for the providers)"
        )
    return provider, name


def provider_info(provider: str) -> ProviderInfo:
    """The registered provider called `provider`, or a one-line error listing the known ones."""
    known = providers()
    if provider in known:
        return known[provider]
    hint = f" Install {KNOWN_ELSEWHERE[provider]} to add it." if provider in KNOWN_ELSEWHERE else ""
    raise ModelNotFoundError(
        f"unknown provider '{provider}'; known providers: {', '.join(sorted(known))}.{hint} "
        "Third-party providers are pip packages registering an 'evalkit' entry point."
    )
