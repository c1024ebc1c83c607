"""Credentials: environment variables, then a `.env` file in the working directory.

Every value handed out is remembered so logs and error messages can redact it.
"""

from __future__ import annotations

import os
from pathlib import Path

_seen: set[str] = set()


def _dotenv() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def get_secret(name: str) -> str | None:
    """The value of credential `name` (e.g. OPENAI_API_KEY), or None when it is not set."""
    value = os.environ.get(name) or _dotenv().get(name)
    if value:
        _seen.add(value)
    return value or None


def known_secrets() -> set[str]:
    """Every credential value handed out so far (for redaction)."""
    return set(_seen)


def scrub(text: str) -> str:
    """`text` with every known credential value replaced."""
    for value in _seen:
        if len(value) >= 6 and value in text:
            text = text.replace(value, "<redacted>")
    return text
