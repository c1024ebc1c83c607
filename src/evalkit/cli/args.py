"""Turns `-M`/`-T` strings and config files into Python values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.errors import ArgumentError

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A scalar (int, float, bool, none), a JSON or YAML list/dict, or else the text itself.

    Text with commas stays a string unless it is written as a list (`[a, b]`).
    """
    stripped = text.strip()
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    for number in (int, float):
        try:
            return number(stripped)
        except ValueError:
            pass
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            import yaml

            try:
                value = yaml.safe_load(stripped)
            except yaml.YAMLError as ex:
                raise ValueError(f"not a valid list or dict ({str(ex).splitlines()[0]})") from None
            if not isinstance(value, (list, dict)):
                raise ValueError("not a valid list or dict")
            return value
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]
    return text


def parse_key_values(items: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """`["k=v", ...]` from a repeatable flag such as `-M` into a dict of parsed values."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").replace("-", "").isalnum():
            shown = key.split(":")[0][:40]  # never what follows ':', a credential may be typed there
            shown += "..." if shown != item else ""
            raise ArgumentError(f"{flag} expects key=value (got '{shown}'), e.g. {flag} temperature=0.5")
        try:
            parsed[key.replace("-", "_")] = parse_value(raw)
        except ValueError as ex:
            raise ArgumentError(f"{flag} {key}: {ex}") from None
    return parsed


def load_config_file(path: str, flag: str) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping of arguments."""
    file = Path(path)
    if not file.is_file():
        raise ArgumentError(f"{flag}: file not found: {path}")
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as ex:
        raise ArgumentError(f"{flag} {path}: not valid YAML or JSON ({str(ex).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ArgumentError(f"{flag} {path}: must hold a mapping of name: value")
    return data


def parse_fail_on_error(text: str) -> bool | float:
    """`true`, `false`, a fraction in (0, 1) or a count of errors."""
    value = parse_value(text)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value > 0:
        return value
    raise ArgumentError(f"--fail-on-error takes true, false, a fraction such as 0.1, or a count (got '{text}')")
