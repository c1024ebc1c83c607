"""A per-file index of a log's samples: where each line starts and the few fields the sample
table sorts and filters on. Built once per file, extended as the file grows, rebuilt when it
is replaced (a resume rewrites it), so a 100,000-sample log is never held whole in memory."""

from __future__ import annotations

import mmap
import os
import threading
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from evalkit.analysis.compare import SampleKey, sample_key
from evalkit.log.validate import problem

_CHUNK = 8 << 20


class Entry(NamedTuple):
    """What the sample table sorts and filters on, for one sample line."""

    id: int | str
    epoch: int
    scores: dict[str, Any]
    error: bool
    retries: int
    tokens: int
    time: float
    limit: str | None


def _entry(record: dict[str, Any], share: Callable[[dict[str, Any]], dict[str, Any]]) -> Entry:
    """The table's fields of a sample record; raises TypeError, ValueError, KeyError or
    AttributeError when they have the wrong shape. (The whole record is checked when the
    sample is opened: checking every field of every line here would double the indexing time.)"""
    sample_id, epoch = record["id"], record.get("epoch", 1)
    if not isinstance(sample_id, (int, str)) or isinstance(sample_id, bool) or not isinstance(epoch, int):
        raise TypeError("id or epoch")
    usage = record.get("usage") or {}
    limit = record.get("limit")
    return Entry(sample_id, epoch, share({name: score["value"] for name, score in (record.get("scores") or {}).items()}),
                 bool(record.get("error")), len(record.get("retries") or ()), int(usage.get("total_tokens", 0)),
                 float(record.get("time", 0.0)), limit.get("type") if isinstance(limit, dict) else None)


class SampleIndex:
    """The samples of one log file: byte offsets and `Entry`s, in file order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: dict[str, Any] | None = None
        self.footer: dict[str, Any] | None = None
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self.version = 0
        """Grows each time the index changes (a reset included), for caches of query results."""
        self._reset(None)

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity = identity
        self._scanned = 0
        self._lines = 0
        self.starts = array("q")
        self.ends = array("q")
        self.entries: list[Entry] = []
        self.positions: dict[SampleKey, int] = {}
        self.scorers: dict[str, None] = {}
        self.header, self.footer, self.problems = None, None, []
        self._searches: dict[str, list[int]] = {}
        self._memo: dict[str, Any] = {}
        self._scores: dict[tuple[tuple[str, type, Any], ...], dict[str, Any]] = {}
        self.version += 1

    def refresh(self) -> SampleIndex:
        """Bring the index up to date with the file (cheap when it has not changed)."""
        with self._lock:
            status = self.path.stat()
            identity = (status.st_dev, status.st_ino)
            if identity != self._identity or status.st_size < self._scanned:
                self._reset(identity)
            if status.st_size > self._scanned:
                self._scan()
        return self

    def _scan(self) -> None:
        with self.path.open("rb") as handle:
            handle.seek(self._scanned)
            rest = b""
            offset = self._scanned
            while chunk := handle.read(_CHUNK):
                data = rest + chunk
                end = data.rfind(b"\n") + 1  # only whole lines: the last may still be being written
                self._add_lines(data[:end], offset)
                offset += end
                rest = data[end:]
            self._scanned = offset
        self.version += 1
        self._searches.clear()
        self._memo.clear()

    def _add_lines(self, data: bytes, offset: int) -> None:
        start = 0
        while start < len(data):
            stop = data.index(b"\n", start)
            self._lines += 1
            if stop > start:
                self._add(data[start:stop], offset + start, offset + stop)
            start = stop + 1

    def _add(self, raw: bytes, start: int, end: int) -> None:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.problems.append(f"line {self._lines}: not valid JSON (left out)")
            return
        if not isinstance(record, dict):
            self.problems.append(f"line {self._lines}: not a JSON object (left out)")
        elif "header" in record:
            self.header = self.header or record["header"]
        elif "footer" in record:
            self.footer = record["footer"]
        else:
            self._add_sample(record, start, end)

    def _add_sample(self, record: dict[str, Any], start: int, end: int) -> None:
        try:
            entry = _entry(record, self._shared)
        except (TypeError, ValueError, KeyError, AttributeError):
            self.problems.append(f"line {self._lines}: {problem('sample', record) or 'not a sample record'} (left out)")
            return
        self.footer = None  # samples after a footer: a resumed run is writing again
        self.positions[sample_key(entry.id, entry.epoch)] = len(self.entries)
        self.entries.append(entry)
        self.starts.append(start)
        self.ends.append(end)
        for scorer in entry.scores:
            if scorer not in self.scorers:
                self.scorers[scorer] = None

    def _shared(self, scores: dict[str, Any]) -> dict[str, Any]:
        """One dict for all the samples with the same scores (most share a few), to keep the index small."""
        try:
            return self._scores.setdefault(tuple((k, type(v), v) for k, v in scores.items()), scores)  # 1 is not True
        except TypeError:  # a value such as a dict or list cannot be a key
            return scores

    def memo(self, name: str, compute: Callable[[SampleIndex], Any]) -> Any:
        """`compute(self)`, kept until the file changes."""
        if name not in self._memo:
            self._memo[name] = compute(self)
        return self._memo[name]

    def records(self, positions: list[int]) -> Iterator[dict[str, Any]]:
        """The whole sample records at `positions`, read from the file."""
        with self.path.open("rb") as handle:
            for position in positions:
                handle.seek(self.starts[position])
                yield orjson.loads(handle.read(self.ends[position] - self.starts[position]))

    def search(self, text: str, matches: Callable[[dict[str, Any], str], bool]) -> list[int]:
        """The positions of samples whose record `matches(record, text)`, trying only the
        lines that hold `text` (any case) in their raw bytes when it is ASCII; cached until the
        file grows."""
        needle = text.lower()
        if needle in self._searches:
            return self._searches[needle]
        raw = orjson.dumps(needle)[1:-1]  # as JSON would escape it inside a string
        found: list[int] = []
        if self.entries:
            with self.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                for position, (start, end) in enumerate(zip(self.starts, self.ends)):
                    if (not needle.isascii() or view[start:end].lower().find(raw) >= 0) and matches(orjson.loads(view[start:end]), needle):
                        found.append(position)
        self._searches[needle] = found
        return found


class IndexCache:
    """One `SampleIndex` per log file, kept while the server runs."""

    def __init__(self) -> None:
        self._indexes: dict[Path, SampleIndex] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> SampleIndex:
        with self._lock:
            index = self._indexes.get(path)
            if index is None:
                index = self._indexes[path] = SampleIndex(path)
        return index.refresh()

    def known(self, path: Path) -> SampleIndex | None:
        return self._indexes.get(path)


def file_stamp(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_ino, status.st_size, status.st_mtime_ns
