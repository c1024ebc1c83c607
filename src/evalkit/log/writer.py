"""Streams a log as JSON Lines: every line is written and flushed as soon as it is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from evalkit.log.schema import EvalSample
from evalkit.secrets import is_known_secret, looks_secret

REDACTED = "<redacted>"


def redact(args: Any, name: str = "") -> Any:
    """A copy of `args` (nested dicts and lists too) with credentials replaced: values under
    names that look like keys, tokens, secrets or passwords, and known credential values."""
    if isinstance(args, dict):
        return {k: redact(v, str(k)) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return [redact(v, name) for v in args]
    if args not in (None, "") and (looks_secret(name) or is_known_secret(args)):
        return REDACTED
    return args


def _default(value: Any) -> Any:
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


class LogWriter:
    """Appends the header, one line per finished sample, and the footer to one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab", buffering=0)

    def _write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, default=_default) + b"\n"
        self._file.write(line)

    def header(self, header: dict[str, Any]) -> None:
        self._write({"header": header})

    def sample(self, sample: EvalSample) -> None:
        self._write(sample.to_dict())

    def footer(self, footer: dict[str, Any]) -> None:
        self._write({"footer": footer})

    def close(self) -> None:
        self._file.close()
