"""Turns `-M`/`-T` strings and config files into Python values."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from evalkit.errors import ArgumentError
from evalkit.model.types import GENERATE_CONFIG_FIELDS, closest_field

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A scalar (int, float, bool, none), a JSON or YAML list/dict, or else the text itself.

    Text with commas stays a string unless it is written as a list (`[a, b]`).
    """
    stripped = text.strip()
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        if any(c.isdigit() for c in stripped):
            raise ValueError(f"{stripped} is out of range (numbers go up to about 1.8e308)")
        return text  # "inf", "nan": words, not numbers
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
    except UnicodeDecodeError as ex:
        raise ArgumentError(f"{flag} {path}: not a text file (byte {ex.start} is not UTF-8); give a YAML or JSON file") from None
    except OSError as ex:
        raise ArgumentError(f"{flag} {path}: cannot be read ({ex.strerror})") from None
    except yaml.YAMLError as ex:
        raise ArgumentError(f"{flag} {path}: not valid YAML or JSON ({str(ex).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ArgumentError(f"{flag} {path}: must hold a mapping of name: value")
    return data


def refuse_generation_settings(model_args: dict[str, Any], flag: str, allowed: frozenset[str]) -> None:
    """Generation settings given as model arguments (`-M temperature=0`) name their own flag."""
    for key, value in model_args.items():
        if key in GENERATE_CONFIG_FIELDS and key not in allowed:
            raise ArgumentError(
                f"{flag} {key} is a generation setting, not a model argument: use --{key.replace('_', '-')} {value}"
            )


def generation_flag_hint(keys: Iterable[str]) -> str:
    """'did you mean --temperature?' for a model argument that looks like a mistyped generation setting."""
    for key in keys:
        close = closest_field(key, cutoff=0.8)
        if close:
            return f"-M {key}: did you mean --{close.replace('_', '-')} (a generation setting)?"
    return ""


def parse_fail_on_error(text: str) -> bool | float:
    """`true`, `false`, a fraction in (0, 1) or a count of errors."""
    value = parse_value(text)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value > 0:
        return value
    raise ArgumentError(f"--fail-on-error takes true, false, a fraction such as 0.1, or a count (got '{text}')")


class FiniteFloat(click.ParamType):
    """A number flag: refuses inf and nan, which no setting means."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"'{value}' is not a finite number", param, ctx)
        return number


class WholeNumber(click.ParamType):
    """A whole-number flag small enough to store in a log (a signed 64-bit integer)."""

    name = "integer"
    LARGEST = 2**63 - 1

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a whole number", param, ctx)
        if abs(number) > self.LARGEST:
            self.fail(f"{value} is too large (at most {self.LARGEST})", param, ctx)
        return number


class ConnectionCount(WholeNumber):
    """`--max-connections`: a whole number, or "auto" for adaptive concurrency."""

    name = "integer|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:  # type: ignore[override]
        return "auto" if str(value).strip().lower() == "auto" else super().convert(value, param, ctx)


FINITE_FLOAT = FiniteFloat()
WHOLE_NUMBER = WholeNumber()
CONNECTION_COUNT = ConnectionCount()


def parse_model_roles(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--model-role grader=provider/model` (repeatable) as {role: model name}."""
    roles: dict[str, str] = {}
    for item in items:
        role, sep, model = item.partition("=")
        if not sep or not role.strip() or not model.strip():
            raise ArgumentError(f"--model-role expects role=provider/model or role=ALIAS (got '{item}'), "
                                "e.g. --model-role grader=openai/gpt-4o")
        roles[role.strip()] = model.strip()
    return roles


def parse_batch(text: str | None) -> bool | int | dict[str, Any] | None:
    """`--batch` alone (on), `--batch SIZE`, or `--batch FILE` (YAML/JSON BatchConfig fields)."""
    if text is None:
        return None
    value = parse_value(text)
    if isinstance(value, bool) or (isinstance(value, int) and value > 0):
        return value
    if isinstance(value, str) and not text.endswith(".py") and Path(text).is_file():
        return load_config_file(text, "--batch")
    raise ArgumentError(f"--batch takes nothing, a batch size above 0 or a YAML/JSON file of BatchConfig fields (got '{text}'); "
                        "put the task before --batch")
