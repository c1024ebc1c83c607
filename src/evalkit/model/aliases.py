"""Named model configurations: aliases declared in models files.

    models:
      fast:
        model: openai/gpt-4o-mini
        base_url: https://gateway.example.com/v1
        api_key: ${secret:TEAM_OPENAI_KEY}
        args: {organization: ${env:OPENAI_ORG}}
        config: {temperature: 0, max_tokens: 512}
        limits: {max_connections: 32, requests_per_sec: 5}

The files are `evalkit.yaml` in the working directory (the project's, whose aliases win) and
`models.yaml` or `evalkit.yaml` in evalkit's user config directory. `${env:NAME}` and
`${secret:NAME}` (the secrets store, .env or the environment) are replaced only when the
alias is used, and never written back anywhere: their values are treated as credentials, so
logs redact them. A name with a `/` is always provider/model;
only a name without one is looked up here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ModelNotFoundError, ModelsFileError
from evalkit.model.types import GENERATE_CONFIG_FIELDS, GenerateConfig, closest_field
from evalkit.secrets import config_dir, get_secret, remember_secret

PROJECT_FILE = "evalkit.yaml"
USER_FILES = ("models.yaml", "evalkit.yaml")
ENTRY_KEYS = ("model", "base_url", "api_key", "args", "config", "limits")
_REFERENCE = re.compile(r"\$\{(env|secret):([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ModelAlias:
    """One alias as written in its file (references unresolved)."""

    name: str
    model: str
    source: Path
    args: dict[str, Any]
    """Provider arguments as `-M` gives them, base_url and api_key included."""
    config: dict[str, Any]
    """Generation defaults and limits (GenerateConfig fields)."""

    def resolve(self, config: GenerateConfig, model_args: dict[str, Any]) -> tuple[GenerateConfig, dict[str, Any]]:
        """The alias's config under `config` and its arguments under `model_args` (the caller's
        settings win), with references replaced by their values."""
        args = {k: self._resolved(v, _arg_key(k)) for k, v in self.args.items()}
        settings = {k: _typed(self._resolved(v, f"config.{k}")) for k, v in self.config.items()}
        try:
            defaults = GenerateConfig(**settings)
        except ValueError as ex:
            raise ModelsFileError(f"{self.source}: models.{self.name}.config: {ex}") from None
        given = {k: v for k, v in model_args.items() if v is not None}
        return defaults.merge(config), {**args, **given}

    def record(self, resolved: GenerateConfig | None = None, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the log header and `evalkit models list` show: the alias, its file and what it
        names, references as written, literal credentials redacted, the `resolved` config and
        which of the args the caller `given` (`-M`) set (`overrides`)."""
        record = {"name": self.name, "source": str(self.source), "model": self.model, "args": shown(self.args),
                  "config": shown(self.config)}
        if resolved is not None:
            record["resolved_config"] = shown(resolved.to_dict())
        if given:
            record["overrides"] = sorted(k for k, v in given.items() if v is not None)
        return record

    def _resolved(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self._resolved(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolved(v, key) for v in value]
        if not isinstance(value, str):
            return value
        return _REFERENCE.sub(lambda found: self._lookup(found, key), value)

    def _lookup(self, found: re.Match[str], key: str) -> str:
        kind, name = found.groups()
        value = os.environ.get(name) if kind == "env" else get_secret(name)
        if not value:
            how = (f"set the environment variable {name}" if kind == "env"
                   else f"store it with 'evalkit secrets set {name}', or set {name} in the environment or .env")
            raise ModelsFileError(f"{self.source}: models.{self.name}.{key}: {found.group(0)} is not set; {how}")
        remember_secret(value)  # an env reference may hold a credential too: never logged
        return value


def find_alias(name: str) -> ModelAlias | None:
    """The alias called `name`, or None for a provider/model name; an unknown name without a
    `/` is an error naming the models files."""
    if "/" in name:
        return None
    aliases = model_aliases()
    if name in aliases:
        return aliases[name]
    files = " or ".join(str(path) for path in models_files())
    known = f" (aliases: {', '.join(sorted(aliases))})" if aliases else ""
    raise ModelNotFoundError(f"model '{name}' must be written provider/model (e.g. openai/gpt-4o, mockllm/model) or name "
                             f"an alias in {files}{known}; run 'evalkit models list' to see the aliases")


def model_to_retry(header: dict[str, Any], model_args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The model and `-M` arguments eval-retry uses again (`model_args` win): a log made with an
    alias names the alias, whose models file gives its settings and credentials again (they are
    never logged), plus the `-M` overrides the user gave; it must still stand for the
    provider/model the log was made with."""
    alias = header.get("model_alias")
    logged = header.get("model_args", {})
    if not alias:
        return header["model"], {**logged, **model_args}
    _alias_again(alias, header["model"], f"alias '{alias['name']}'")
    overrides = alias.get("overrides", [])
    kept = {k: v for k, v in logged.items() if k not in alias["args"] or k in overrides}
    return alias["name"], {**kept, **model_args}


def roles_to_retry(header: dict[str, Any]) -> dict[str, str]:
    """The model role names eval-retry creates again: a role given as an alias is that alias
    (so its base_url, credentials and config come from the models file again), else the
    logged provider/model."""
    roles = dict(header.get("model_roles", {}))
    for role, alias in header.get("model_role_aliases", {}).items():
        roles[role] = _alias_again(alias, roles.get(role), f"alias '{alias['name']}' (model role {role})")
    return roles


def _alias_again(alias: dict[str, Any], logged_model: str | None, what: str) -> str:
    """The logged alias's name, if it still stands for the model the log was made with."""
    current = find_alias(alias["name"])
    if current is None or current.model != logged_model:
        raise ModelsFileError(f"{what} now stands for {current.model if current else 'nothing'}, but the log was made "
                              f"with {logged_model}; restore the alias in {alias['source']}")
    return alias["name"]


def models_files() -> list[Path]:
    """The models files in the order they are read: the user's, then the project's (which wins)."""
    return [config_dir() / name for name in USER_FILES] + [Path.cwd() / PROJECT_FILE]


def model_aliases() -> dict[str, ModelAlias]:
    """Every alias by name, a project alias replacing a user one of the same name."""
    aliases: dict[str, ModelAlias] = {}
    for path in models_files():
        if path.is_file():
            aliases.update(read_models_file(path))
    return aliases


def read_models_file(path: Path) -> dict[str, ModelAlias]:
    """The aliases in `path`, checked; a mistake is one `ModelsFileError` naming file and key."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as ex:
        raise ModelsFileError(f"{path}: cannot be read ({ex})") from None
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ModelsFileError(f"{path}: not valid YAML{where} ({getattr(ex, 'problem', None) or ex}); "
                              "quote values that start with ${ or hold ': '") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelsFileError(f"{path}: must be a mapping with a 'models:' key")
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise ModelsFileError(f"{path}: models: must be a mapping of alias names to model settings")
    return {str(name): _alias(path, str(name), entry) for name, entry in models.items()}


def _alias(path: Path, name: str, entry: Any) -> ModelAlias:
    where = f"{path}: models.{name}"
    if not name.strip() or "/" in name or "," in name:
        raise ModelsFileError(f"{where}: an alias name may not be empty or hold '/' or ','")
    if isinstance(entry, str):
        entry = {"model": entry}
    if not isinstance(entry, dict):
        raise ModelsFileError(f"{where}: must be a mapping (model: provider/model, ...) or a provider/model string")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise ModelsFileError(f"{where}.{key}: unknown key (known: {', '.join(ENTRY_KEYS)})")
    model = entry.get("model")
    if not isinstance(model, str) or "/" not in model.strip("/"):
        raise ModelsFileError(f"{where}.model: give the provider/model the alias stands for (e.g. openai/gpt-4o)")
    args = {**_mapping(entry, "args", where), **{k: entry[k] for k in ("base_url", "api_key") if entry.get(k) is not None}}
    config = _mapping(entry, "config", where)
    limits = _mapping(entry, "limits", where)
    for key in config:
        if key not in GENERATE_CONFIG_FIELDS:
            close = closest_field(str(key), cutoff=0.75)
            raise ModelsFileError(f"{where}.config.{key}: unknown generate config field" + (f" (did you mean {close}?)" if close else ""))
    from evalkit.model.model import LIMIT_ARGS  # here: model.py imports this module

    for key in limits:
        if key not in LIMIT_ARGS:
            raise ModelsFileError(f"{where}.limits.{key}: unknown limit (known: {', '.join(sorted(LIMIT_ARGS))})")
    for key, value in {**{_arg_key(k): v for k, v in args.items()}, **{f"config.{k}": v for k, v in config.items()}}.items():
        _check_references(value, f"{where}.{key}")
    return ModelAlias(name, model.strip(), path, args, {**config, **limits})


def _arg_key(name: str) -> str:
    """Where provider argument `name` is written in an alias: base_url and api_key at the top."""
    return name if name in ("base_url", "api_key") else f"args.{name}"


def _mapping(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        raise ModelsFileError(f"{where}.{key}: must be a mapping of names to values")
    return {str(k): v for k, v in value.items()}


def _check_references(value: Any, where: str) -> None:
    """Refuse `${...}` that is not `${env:NAME}` or `${secret:NAME}`."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_references(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_references(item, where)
    elif isinstance(value, str) and "${" in _REFERENCE.sub("", value):
        raise ModelsFileError(f"{where}: write a reference as ${{env:NAME}} or ${{secret:NAME}}")


def shown(value: Any, name: str = "") -> Any:
    """`value` for display: references as written, credentials redacted."""
    from evalkit.log.writer import redact

    if isinstance(value, dict):
        return {k: shown(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v, name) for v in value]
    if isinstance(value, str) and _REFERENCE.fullmatch(value):
        return value
    return redact(value, name)


def _typed(value: Any) -> Any:
    """A config value from a reference as YAML reads it: `${env:MAX_TOKENS}` may stand for a number."""
    if not isinstance(value, str):
        return value
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, bool)) else value


def role_aliases(roles: dict[str, Any]) -> dict[str, Any]:
    """The log header's `model_role_aliases` (only when a role's Model came from an alias):
    each such role's alias record, which eval-retry resolves again."""
    found = {role: each.alias for role, each in roles.items() if each.alias}
    return {"model_role_aliases": found} if found else {}
