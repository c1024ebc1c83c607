"""A per-file index of a log's samples: where each line starts and the few fields the sample
table sorts and filters on. Built once per file, extended as the file grows, rebuilt when it
is replaced (a resume or eval-retry's compaction renames a new file over it), so a 100,000-sample
log is never held whole in memory. Each refresh hands out an immutable `Snapshot`; a request uses
one snapshot throughout and reads lines through the file handle it was built from, so a log
replaced or grown meanwhile never mixes two versions of the file in one answer."""

from __future__ import annotations

import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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


class LogChangedError(Exception):
    """The log was changed in place (cut short or rewritten) while a request was reading it."""


class LogFile:
    """An open log file, read at byte offsets (no shared file position: safe from any thread).
    It stays readable after another file is renamed over its path."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("rb", buffering=0)
        status = os.fstat(self._handle.fileno())
        self.identity = (status.st_dev, status.st_ino)

    def size(self) -> int:
        return os.fstat(self._handle.fileno()).st_size

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes from `offset` (fewer only at the end of the file)."""
        parts = []
        while size > 0 and (part := os.pread(self._handle.fileno(), size, offset)):
            parts.append(part)
            offset, size = offset + len(part), size - len(part)
        return b"".join(parts)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One version of a log's index: its samples' byte offsets and `Entry`s in file order, the
    header, footer and damaged lines, and the open file they were read from."""

    path: Path
    version: int
    """Grows each time the index changes (a reset included), for caches of query results."""
    file: LogFile
    header: dict[str, Any] | None = None
    footer: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()
    scorers: tuple[str, ...] = ()
    starts: array[int] = field(default_factory=lambda: array("q"))
    ends: array[int] = field(default_factory=lambda: array("q"))
    entries: tuple[Entry, ...] = ()
    _memo: dict[str, Any] = field(default_factory=dict)

    def memo(self, name: str, compute: Callable[[Snapshot], Any]) -> Any:
        """`compute(self)`, kept with this snapshot."""
        if name not in self._memo:
            self._memo[name] = compute(self)
        return self._memo[name]

    @property
    def positions(self) -> dict[SampleKey, int]:
        """The position of each (id, epoch); the last line wins when one was written twice."""
        return self.memo("positions", lambda s: {sample_key(e.id, e.epoch): p for p, e in enumerate(s.entries)})

    def records(self, positions: Sequence[int]) -> Iterator[dict[str, Any]]:
        """The whole sample records at `positions`, read from this snapshot's file."""
        for position in positions:
            yield self._record(self._line(position))

    def search(self, text: str, matches: Callable[[dict[str, Any], str], bool]) -> list[int]:
        """The positions of samples whose record `matches(record, text)`, trying only the
        lines that hold `text` (any case) in their raw bytes when it is ASCII; kept with this snapshot."""
        return self.memo(f"search:{text.lower()}", lambda snapshot: snapshot._search(text.lower(), matches))

    def _search(self, needle: str, matches: Callable[[dict[str, Any], str], bool]) -> list[int]:
        raw = orjson.dumps(needle)[1:-1]  # as JSON would escape it inside a string
        return [position for position, line in self._lines()
                if (not needle.isascii() or line.lower().find(raw) >= 0) and matches(self._record(line), needle)]

    def _line(self, position: int) -> bytes:
        start, end = self.starts[position], self.ends[position]
        line = self.file.read(start, end - start)
        if len(line) != end - start:
            raise LogChangedError(self.path)
        return line

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """Every sample line with its position, read in large chunks."""
        position, count = 0, len(self.entries)
        while position < count:
            offset = self.starts[position]
            chunk = self.file.read(offset, max(_CHUNK, self.ends[position] - offset))
            if len(chunk) < self.ends[position] - offset:
                raise LogChangedError(self.path)
            while position < count and self.ends[position] - offset <= len(chunk):
                yield position, chunk[self.starts[position] - offset:self.ends[position] - offset]
                position += 1

    def _record(self, line: bytes) -> dict[str, Any]:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            raise LogChangedError(self.path) from None


class SampleIndex:
    """The samples of one log file, kept up to date by `refresh()`, which hands out snapshots."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._version = 0
        self._file: LogFile | None = None
        self._scanned = 0

    def _start_over(self, file: LogFile) -> None:
        self._file = file
        self._scanned = 0
        self._lines = 0
        self._header: dict[str, Any] | None = None
        self._footer: dict[str, Any] | None = None
        self._problems: list[str] = []
        self._scorers: dict[str, None] = {}
        self._scores: dict[tuple[tuple[str, type, Any], ...], dict[str, Any]] = {}
        self._version += 1
        self._snapshot = Snapshot(self.path, self._version, file)

    def refresh(self) -> Snapshot:
        """The index brought up to date with the file (cheap when it has not changed)."""
        with self._lock:
            status = self.path.stat()
            if self._file is None or (status.st_dev, status.st_ino) != self._file.identity or status.st_size < self._scanned:
                self._start_over(LogFile(self.path))
            if self._snapshot.file.size() > self._scanned:
                self._scan(self._snapshot.file)
            return self._snapshot

    def _scan(self, file: LogFile) -> None:
        self._starts, self._ends, self._entries = array("q"), array("q"), []
        rest = b""
        offset = self._scanned
        while chunk := file.read(offset + len(rest), _CHUNK):
            data = rest + chunk
            end = data.rfind(b"\n") + 1  # only whole lines: the last may still be being written
            self._add_lines(data[:end], offset)
            offset += end
            rest = data[end:]
        if offset > self._scanned:
            self._scanned = offset
            self._version += 1
            old = self._snapshot
            self._snapshot = Snapshot(self.path, self._version, file, self._header, self._footer, tuple(self._problems),
                                      tuple(self._scorers), old.starts + self._starts, old.ends + self._ends,
                                      old.entries + tuple(self._entries))
        del self._starts, self._ends, self._entries

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
            self._problems.append(f"line {self._lines}: not valid JSON (left out)")
            return
        if not isinstance(record, dict):
            self._problems.append(f"line {self._lines}: not a JSON object (left out)")
        elif "header" in record:
            self._header = self._header or record["header"]
        elif "footer" in record:
            self._footer = record["footer"]
        elif "batch" in record:  # a provider batch created (batch mode): not a sample
            return
        else:
            self._add_sample(record, start, end)

    def _add_sample(self, record: dict[str, Any], start: int, end: int) -> None:
        try:
            entry = _entry(record, self._shared)
        except (TypeError, ValueError, KeyError, AttributeError):
            self._problems.append(f"line {self._lines}: {problem('sample', record) or 'not a sample record'} (left out)")
            return
        self._footer = None  # samples after a footer: a resumed run is writing again
        self._entries.append(entry)
        self._starts.append(start)
        self._ends.append(end)
        for scorer in entry.scores:
            if scorer not in self._scorers:
                self._scorers[scorer] = None

    def _shared(self, scores: dict[str, Any]) -> dict[str, Any]:
        """One dict for all the samples with the same scores (most share a few), to keep the index small."""
        try:
            return self._scores.setdefault(tuple((k, type(v), v) for k, v in scores.items()), scores)  # 1 is not True
        except TypeError:  # a value such as a dict or list cannot be a key
            return scores


class IndexCache:
    """The `SampleIndex`es of the logs most recently asked for, kept while the server runs
    (at most `kept`: each holds its log open and its entries in memory)."""

    def __init__(self, kept: int = 64) -> None:
        self._indexes: OrderedDict[Path, SampleIndex] = OrderedDict()
        self._kept = kept
        self._lock = threading.Lock()

    def get(self, path: Path) -> Snapshot:
        """The up-to-date snapshot of `path`'s index."""
        with self._lock:
            index = self._indexes.get(path)
            if index is None:
                index = self._indexes[path] = SampleIndex(path)
                while len(self._indexes) > self._kept:
                    self._indexes.popitem(last=False)  # requests using its snapshots keep its file open
            self._indexes.move_to_end(path)
        return index.refresh()

    def known(self, path: Path) -> SampleIndex | None:
        return self._indexes.get(path)


def file_stamp(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_ino, status.st_size, status.st_mtime_ns
