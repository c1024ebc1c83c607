"""Turns log records into JSON lines: plain JSON values, numpy numbers and arrays as JSON
numbers and lists, and a `LogValueError` naming the field for anything else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import LogValueError

_MAX_DEPTH = 200  # orjson refuses deeper nesting (its limit is 254)


def _plain(value: Any) -> Any:
    """The JSON-ready form of a value orjson does not handle itself."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays; numpy is never imported here
    raise TypeError(type(value).__name__)


def _options() -> int:
    # orjson writes numpy arrays fast itself, but asking it to would import numpy
    return orjson.OPT_SERIALIZE_NUMPY if "numpy" in sys.modules else 0


def encode(record: dict[str, Any]) -> bytes:
    """`record` as one JSON line (with its newline); a value that cannot be stored raises
    `LogValueError` naming its field path (e.g. `scores.match.metadata.obj`)."""
    try:
        return orjson.dumps(record, default=_plain, option=_options() | orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        check_serialisable(record)
        raise  # orjson refused something the check accepts: a bug here, not the user's


def check_serialisable(value: Any, path: str = "") -> None:
    """Raise `LogValueError` naming the first field under `path` that a log cannot hold."""
    _check(value, path, 0)


def _check(value: Any, path: str, depth: int) -> None:
    where = path or "record"
    if depth > _MAX_DEPTH:
        raise LogValueError(f"{where}: nested too deeply to store in the log (does it contain itself?)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LogValueError(f"{where}: key {key!r} is not a string ({type(key).__name__}); log keys must be strings")
            _check(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
    else:
        try:
            orjson.dumps(value, default=_plain, option=_options())
        except TypeError as ex:
            if "not JSON serializable" in str(ex):  # what orjson says when `_plain` refuses
                raise LogValueError(f"{where}: cannot store a value of type {type(value).__name__} in the log") from None
            raise LogValueError(f"{where}: cannot store this value in the log ({ex})") from None
