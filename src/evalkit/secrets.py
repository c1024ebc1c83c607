"""Credentials: environment variables, then a `.env` file in the working directory, then
evalkit's secrets store (the OS keyring when one is available, else a 0600 file).

Every value handed out is remembered so logs and error messages can redact it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from evalkit.errors import SecretsFileError

KEYRING_SERVICE = "evalkit"
REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"key|token(?!s)|secret|password|passwd|credential|auth", re.IGNORECASE)
_MIN_SCRUBBED = 6  # shorter remembered values are too likely to be ordinary words
_seen: set[str] = set()

_SHAPES = [  # (what stays, the credential) in text that carries one
    re.compile(r"(\b(?i:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"()\b(sk-[A-Za-z0-9_-]{16,})"),  # OpenAI and Anthropic keys
    re.compile(r"()\b((?:AKIA|ASIA)[A-Z0-9]{16})\b"),  # AWS access key ids
    re.compile(r"((?i:aws_?secret_?access_?key|aws_?session_?token|secretaccesskey|sessiontoken)[\"']?\s*[:=]\s*[\"']?)"
               r"([A-Za-z0-9/+=]{16,})"),
    re.compile(r"((?i:api[_-]?key|password|passwd|access[_-]?token)(?:\s*=\s*[\"']?|[\"']\s*:\s*[\"']))([^\s\"',;&}]{8,})"),
    re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(?=@)"),  # a password in a URL
]


def looks_secret(name: str) -> bool:
    """Whether a setting called `name` holds a credential (API_KEY, auth_token, password...)."""
    return _SECRET_NAME.search(name) is not None


def remember_secret(value: object) -> None:
    """Treat `value` as a credential from now on: redact it from logs and messages."""
    if isinstance(value, str) and value:
        _seen.add(value)
        for part in _credentials_in(value):
            _seen.add(part)
        scheme, _, token = value.partition(" ")
        if token and scheme.lower() in ("bearer", "basic"):
            _seen.add(token.strip())


def remember_secrets(value: object, name: str = "") -> None:
    """Remember the credentials at any depth of `value` (e.g. `-M` arguments): strings under
    names that look secret, and credential shapes in any string (a password in a URL)."""
    if isinstance(value, dict):
        for key, item in value.items():
            remember_secrets(item, str(key) if looks_secret(str(key)) else name)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            remember_secrets(item, name)
    elif isinstance(value, str):
        if name:
            remember_secret(value)
        else:
            _seen.update(_credentials_in(value))


def _credentials_in(text: str) -> list[str]:
    return [found.group(2) for shape in _SHAPES for found in shape.finditer(text)]


def _dotenv() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def apply_dotenv_settings() -> None:
    """Make evalkit's own settings in `.env` (EVALKIT_MODEL, EVALKIT_LOG_DIR, ...) defaults of
    this process; the environment wins. Credentials in `.env` stay out of the environment."""
    for name, value in _dotenv().items():
        if name.startswith("EVALKIT_") and name not in os.environ:
            os.environ[name] = value


def config_dir() -> Path:
    """evalkit's user config directory (EVALKIT_CONFIG_DIR overrides it)."""
    override = os.environ.get("EVALKIT_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("evalkit"))


class FileStore:
    """Secrets in a JSON file readable only by its owner."""

    name = "file"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "secrets.json"

    def _read(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as ex:
            raise SecretsFileError(f"the secrets file {self.path} is corrupt ({ex}); "
                                   "delete it and store the secrets again with: evalkit secrets set NAME") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SecretsFileError(f"the secrets file {self.path} is not a mapping of names to values; "
                                   "delete it and store the secrets again with: evalkit secrets set NAME")
        return data

    def _write(self, data: dict[str, str]) -> None:
        """Replace the file atomically; the file is 0600 and its folder 0700 whatever the
        umask or a stale temporary file left by an earlier crash."""
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        temporary = self.path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.chmod(temporary, 0o600)
            json.dump(data, file)
            file.flush()
            os.fsync(descriptor)
        os.replace(temporary, self.path)

    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        self._write({**self._read(), name: value})

    def delete(self, name: str) -> bool:
        data = self._read()
        found = data.pop(name, None) is not None
        self._write(data)
        return found

    def names(self) -> list[str]:
        return sorted(self._read())


class KeyringStore:
    """Secrets in the OS keyring; names are kept in the file store's index (no values)."""

    name = "keyring"

    def __init__(self, keyring: Any) -> None:
        self.keyring = keyring
        self.index = FileStore(config_dir() / "secret-names.json")

    def get(self, name: str) -> str | None:
        return self.keyring.get_password(KEYRING_SERVICE, name)

    def set(self, name: str, value: str) -> None:
        self.keyring.set_password(KEYRING_SERVICE, name, value)
        self.index.set(name, "")

    def delete(self, name: str) -> bool:
        try:
            self.keyring.delete_password(KEYRING_SERVICE, name)
        except Exception:
            return False
        finally:
            self.index.delete(name)
        return True

    def names(self) -> list[str]:
        return self.index.names()


def secret_store() -> FileStore | KeyringStore:
    """The keyring when a usable backend exists (EVALKIT_SECRETS_BACKEND=file forces the file)."""
    if os.environ.get("EVALKIT_SECRETS_BACKEND", "auto") != "file":
        try:
            import keyring
            from keyring.backends import fail

            backend = keyring.get_keyring()
            if not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 0) > 0:
                return KeyringStore(keyring)
        except Exception:
            pass
    return FileStore()


def get_secret(name: str) -> str | None:
    """The value of setting `name` (e.g. OPENAI_API_KEY, AWS_DEFAULT_REGION), or None when it
    is not set. Values of credential-like names are remembered for redaction."""
    value = os.environ.get(name) or _dotenv().get(name)
    if not value:
        try:
            value = secret_store().get(name)
        except (OSError, ValueError):
            value = None
    if value and looks_secret(name):
        remember_secret(value)
    return value or None


def secret_source(name: str) -> str | None:
    """Where credential `name` would come from: "environment", ".env", "store", or None."""
    if os.environ.get(name):
        return "environment"
    if _dotenv().get(name):
        return ".env"
    try:
        return "store" if secret_store().get(name) else None
    except (OSError, ValueError):
        return None


def is_known_secret(value: object) -> bool:
    """Whether `value` is a credential handed out by `get_secret`."""
    return isinstance(value, str) and value in _seen


def scrub(text: str) -> str:
    """`text` with every credential handed out or remembered so far replaced, and anything
    shaped like a credential masked: Bearer tokens, sk-... keys, AWS keys, URL passwords."""
    for value in sorted(_seen, key=len, reverse=True):
        if len(value) >= _MIN_SCRUBBED and value in text:
            text = text.replace(value, REDACTED)
    for shape in _SHAPES:
        text = shape.sub(lambda found: found.group(1) + REDACTED, text)
    return text


def excerpt(text: str, limit: int = 300) -> str:
    """The start of `text` for an error message, scrubbed before it is cut (so a cut never
    leaves part of a credential)."""
    return scrub(text)[:limit]
