"""The output cache: `CachePolicy`, the key of a request, and an SQLite store shared by evals.

A request's key covers the model, its base URL and model args (credentials left out), the messages, the tools offered and tool_choice,
the generate config that shapes the answer (not timeouts, retries or limits), the sample's epoch
(with `per_epoch`) and the policy's scopes. Entries live in one SQLite file in WAL mode, so any
number of evals (processes) read and write it at once; lookups and writes run in a worker
thread, so a writer waiting on another eval's lock never stalls the event loop.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

from evalkit.errors import ArgumentError, CacheError
from evalkit.secrets import REDACTED
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    message_from_dict,
    message_to_dict,
)
from evalkit.tool.types import ToolChoice, ToolFunction, ToolInfo

DEFAULT_EXPIRY = "1W"
OPERATIONAL_FIELDS = frozenset({"timeout", "attempt_timeout", "max_retries", "max_connections", "requests_per_sec",
                                "tokens_per_sec"})
"""GenerateConfig fields that change how a request is made, not its answer: left out of the key."""
KEY_VERSION = 2
"""Part of every key: a change to the stored form makes old entries miss instead of misread."""
SHRINK_BUSY_MS = 1000
"""How long `cache clear`/`prune` wait for another eval's lock before skipping the VACUUM."""
BUSY_MS = 60_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}
_EXPIRY = re.compile(r"(\d+)([smhDWMY])")


def expiry_seconds(expiry: str | None) -> float | None:
    """Seconds in an expiry such as "30s", "10m", "3h", "1D", "1W", "1M" or "1Y" (None: never)."""
    if expiry is None:
        return None
    found = _EXPIRY.fullmatch(str(expiry).strip())
    if found is None or int(found.group(1)) == 0:
        raise ArgumentError(f"cache expiry must be a count and a unit: s, m (minutes), h, D, W, M (months) or Y, "
                            f"e.g. 30s, 3h, 1D, 1W (got {expiry!r})")
    return int(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True)
class CachePolicy:
    """How model outputs are cached: kept for `expiry` ("1W"; None: never expire), one entry per
    epoch when `per_epoch` (so epochs stay distinct samples), and apart for different `scopes`."""

    expiry: str | None = DEFAULT_EXPIRY
    per_epoch: bool = True
    scopes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expiry_seconds(self.expiry)
        if not isinstance(self.scopes, dict):
            raise ArgumentError(f"CachePolicy scopes must be a dict of names to values (got {self.scopes!r})")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in a log header."""
        return {"expiry": self.expiry, "per_epoch": self.per_epoch, "scopes": self.scopes}


def cache_policy(cache: bool | str | CachePolicy | None) -> CachePolicy | None:
    """The policy meant by a `cache` argument: True or an expiry string -> a CachePolicy,
    False or None -> no caching."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return CachePolicy()
    if isinstance(cache, str):
        return CachePolicy(expiry=cache)
    if isinstance(cache, CachePolicy):
        return cache
    raise ArgumentError(f"cache must be True, False, an expiry such as '1W', or a CachePolicy (got {cache!r})")


def eval_cache(cache: bool | str | CachePolicy | None) -> CachePolicy | None:
    """An eval's cache policy, its store opened now so that a cache that cannot be used fails
    the eval before any model call."""
    policy = cache_policy(cache)
    if policy is not None:
        open_store()
    return policy


@dataclass
class SampleCache:
    """One sample's epoch (part of per-epoch keys) and how many of its requests the cache answered."""

    epoch: int | None = None
    hits: int = 0


sample_cache: contextvars.ContextVar[SampleCache | None] = contextvars.ContextVar("evalkit_sample_cache", default=None)
"""Set by the runner per sample."""


def cache_key(model: str, base_url: str | None, model_args: dict[str, Any], messages: list[ChatMessage],
              tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig, policy: CachePolicy,
              epoch: int | None) -> str:
    """The hex SHA-256 naming one request's answer."""
    material = {
        "version": KEY_VERSION,
        "model": model,
        "base_url": base_url,
        "model_args": key_args(model_args),
        "messages": [message_to_dict(m) for m in messages],
        "tools": [asdict(t) for t in tools],
        "tool_choice": asdict(tool_choice) if isinstance(tool_choice, ToolFunction) else tool_choice,
        "config": {k: v for k, v in config.to_dict().items() if k not in OPERATIONAL_FIELDS},
        "epoch": epoch if policy.per_epoch else None,
        "scopes": policy.scopes,
    }
    text = json.dumps(material, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def key_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """The model args a key covers: all but credentials (api_key, and whatever the log would
    redact); base_url is keyed as the provider resolved it."""
    from evalkit.log.writer import redact

    kept = redact({k: v for k, v in model_args.items() if k not in ("base_url", "api_key")})
    return {k: v for k, v in kept.items() if v != REDACTED}


def output_to_dict(output: ModelOutput) -> dict[str, Any]:
    """Everything in a ModelOutput as JSON: choices (messages, tool calls, reasoning, stop
    reasons, logprobs), usage, time and metadata."""
    return {
        "model": output.model,
        "choices": [_choice_to_dict(c) for c in output.choices],
        "usage": asdict(output.usage) if output.usage is not None else None,
        "time": output.time,
        "metadata": output.metadata,
    }


def output_from_dict(data: dict[str, Any]) -> ModelOutput:
    """The ModelOutput `output_to_dict` stored."""
    usage = data.get("usage")
    return ModelOutput(
        model=data["model"],
        choices=[_choice_from_dict(c) for c in data["choices"]],
        usage=ModelUsage(**usage) if usage is not None else None,
        time=data.get("time"),
        metadata=data.get("metadata"),
    )


def _choice_to_dict(choice: ChatCompletionChoice) -> dict[str, Any]:
    logprobs = None
    if choice.logprobs is not None:
        logprobs = [{"token": lp.token, "logprob": lp.logprob, "top": [[t.token, t.logprob] for t in lp.top_logprobs]}
                    for lp in choice.logprobs]
    return {"message": message_to_dict(choice.message), "stop_reason": choice.stop_reason, "logprobs": logprobs}


def _choice_from_dict(data: dict[str, Any]) -> ChatCompletionChoice:
    message = message_from_dict(data["message"])
    if not isinstance(message, ChatMessageAssistant):
        raise ValueError("a cached choice must hold an assistant message")
    logprobs = data.get("logprobs")
    return ChatCompletionChoice(
        message=message,
        stop_reason=data["stop_reason"],
        logprobs=None if logprobs is None else tuple(
            Logprob(lp["token"], lp["logprob"], tuple(TopLogprob(t, p) for t, p in lp["top"])) for lp in logprobs),
    )


def cache_dir() -> Path:
    """Where the cache lives: EVALKIT_CACHE_DIR, else the user cache directory."""
    configured = os.environ.get("EVALKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        return Path.home() / ".cache" / "evalkit"
    return Path(user_cache_dir("evalkit", appauthor=False))


def cache_file() -> Path:
    """The SQLite file holding the cached outputs."""
    return cache_dir() / "outputs.sqlite3"


@dataclass(frozen=True)
class ModelEntries:
    """What the cache holds for one model."""

    model: str
    entries: int
    bytes: int
    expired: int


class CacheStore:
    """Cached outputs in one SQLite file (WAL mode: readers never wait, writers take turns)."""

    def __init__(self, path: Path) -> None:
        import sqlite3  # here: `import evalkit` does not load sqlite3

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                         "created REAL NOT NULL, expires REAL, output TEXT NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS outputs_model ON outputs (model)")

    def get(self, key: str) -> ModelOutput | None:
        """The unexpired output stored under `key`, if any (an unreadable entry is a miss)."""
        with self._lock:
            row = self._db.execute("SELECT output FROM outputs WHERE key = ? AND (expires IS NULL OR expires > ?)",
                                   (key, time.time())).fetchone()
        if row is None:
            return None
        try:
            return output_from_dict(json.loads(row[0]))
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, model: str, output: ModelOutput, expiry: float | None) -> bool:
        """Store `output` for `expiry` seconds (None: for ever); False if it cannot be stored as JSON."""
        try:
            text = json.dumps(output_to_dict(output), ensure_ascii=False)
        except (TypeError, ValueError):
            return False
        now = time.time()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO outputs (key, model, created, expires, output) VALUES (?, ?, ?, ?, ?)",
                             (key, model, now, None if expiry is None else now + expiry, text))
        return True

    def models(self) -> list[ModelEntries]:
        """Entries, bytes and expired entries per model, by model name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT model, COUNT(*), SUM(LENGTH(CAST(output AS BLOB))), SUM(expires IS NOT NULL AND expires <= ?) "
                "FROM outputs GROUP BY model ORDER BY model", (time.time(),)).fetchall()
        return [ModelEntries(model, count, size or 0, expired or 0) for model, count, size, expired in rows]

    def clear(self, models: list[str] | None = None) -> int:
        """Delete every entry, or those of `models`; returns how many."""
        with self._lock:
            if models is None:
                deleted = self._db.execute("DELETE FROM outputs").rowcount
            else:
                marks = ", ".join("?" * len(models))
                deleted = self._db.execute(f"DELETE FROM outputs WHERE model IN ({marks})", models).rowcount
        self._shrink()
        return deleted

    def prune(self) -> int:
        """Delete the expired entries; returns how many."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM outputs WHERE expires IS NOT NULL AND expires <= ?",
                                       (time.time(),)).rowcount
        self._shrink()
        return deleted

    def _shrink(self) -> None:
        """Give deleted pages back to the file system (skipped, after a short wait, while another
        eval holds the file, so that eval's writes are not held up behind a long wait)."""
        import sqlite3

        with self._lock:
            self._db.execute(f"PRAGMA busy_timeout={SHRINK_BUSY_MS}")
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
            except sqlite3.OperationalError:
                pass
            finally:
                self._db.execute(f"PRAGMA busy_timeout={BUSY_MS}")


_stores: dict[Path, CacheStore] = {}
_stores_lock = threading.Lock()


def open_store() -> CacheStore:
    """The process's store for the current cache file (opened once per file)."""
    path = cache_file()
    with _stores_lock:
        if path not in _stores:
            with _cache_errors(path):
                _stores[path] = CacheStore(path)
        return _stores[path]


@contextmanager
def _cache_errors(path: Path) -> Iterator[None]:
    """File system and SQLite errors as a CacheError naming the file and the way out."""
    import sqlite3

    try:
        yield
    except (OSError, sqlite3.Error) as ex:
        raise CacheError(f"the output cache {path} cannot be used ({type(ex).__name__}: {ex}); set EVALKIT_CACHE_DIR "
                         "to a writable directory, or run without the cache") from None


@dataclass
class CacheEntry:
    """One request's place in the cache: `fetch` before the request, `keep` after it succeeds."""

    key: str
    model: str
    policy: CachePolicy
    hit: bool = False

    async def fetch(self) -> ModelOutput | None:
        """The cached output, counted as a hit of the running sample; None on a miss."""
        output = await anyio.to_thread.run_sync(self._get)
        if output is not None:
            self.hit = True
            counter = sample_cache.get()
            if counter is not None:
                counter.hits += 1
        return output

    async def keep(self, output: ModelOutput) -> None:
        """Store a fresh output (not one the cache gave, nor an error or an empty one)."""
        if self.hit or not output.choices or any(c.stop_reason == "error" for c in output.choices):
            return
        await anyio.to_thread.run_sync(self._put, output)

    def _get(self) -> ModelOutput | None:
        store = open_store()
        with _cache_errors(store.path):
            return store.get(self.key)

    def _put(self, output: ModelOutput) -> None:
        store = open_store()
        with _cache_errors(store.path):
            store.put(self.key, self.model, output, expiry_seconds(self.policy.expiry))


def cache_entry(cache: bool | CachePolicy | None, model: str, base_url: str | None, model_args: dict[str, Any],
                messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None,
                config: GenerateConfig) -> CacheEntry | None:
    """The cache entry for a request, or None when `cache` is off."""
    policy = cache_policy(cache)
    if policy is None:
        return None
    counter = sample_cache.get()
    epoch = counter.epoch if counter is not None else None
    key = cache_key(model, base_url, model_args, messages, tools, tool_choice, config, policy, epoch)
    return CacheEntry(key, model, policy)
