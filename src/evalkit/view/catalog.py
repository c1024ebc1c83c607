"""The logs under the viewer's folder: names resolved safely, run rows cached per file."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.analysis.paths import LOG_SUFFIX
from evalkit.analysis.rows import count_lines, run_row
from evalkit.errors import EvalkitError
from evalkit.log.reader import read_eval_log
from evalkit.view.index import IndexCache, Snapshot, file_stamp
from evalkit.view.queries import SampleQuery, run_name, run_summary

_SELECTIONS = 16


class Catalog:
    """Lists the runs under `log_dir` and hands out the index snapshot of one by name."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.root = log_dir.resolve()
        self.indexes = IndexCache()
        self._rows: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._selections: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, name: str) -> Path | None:
        """The log file `name` (a path relative to the folder) names, or None when it names
        nothing, or anything outside the folder or other than a log."""
        if not name or "\x00" in name:
            return None
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or path.suffix != LOG_SUFFIX or not path.is_file():
            return None
        return path

    def runs(self) -> list[dict[str, Any]]:
        """A row per log under the folder, newest first; an unreadable one says why (a link to
        a file outside the folder is left out)."""
        paths = sorted((p for p in self.root.rglob(f"*{LOG_SUFFIX}") if self.resolve(run_name(p, self.root))), reverse=True)
        return [self._row(path) for path in paths]

    def _row(self, path: Path) -> dict[str, Any]:
        name = run_name(path, self.root)
        index = self.indexes.known(path)
        try:
            snapshot = index.refresh() if index is not None else None
            if snapshot is not None and snapshot.header is not None:
                return run_summary(snapshot, name)
            stamp = file_stamp(path)
            cached = self._rows.get(path)
            if cached is None or cached[0] != stamp:
                log = read_eval_log(path, header_only=True)
                cached = self._rows[path] = (stamp, {**run_row(log, None if log.footer else count_lines(path)), "log": name})
            return cached[1]
        except (EvalkitError, OSError) as ex:
            return {"log": name, "status": "unreadable", "error": str(ex), "task": None, "model": None, "metrics": {}}

    def selection(self, index: Snapshot, query: SampleQuery, select: Callable[[Snapshot, SampleQuery], list[int]]) -> list[int]:
        """`select(index, query)`, kept for the next pages of the same query on the same snapshot."""
        key = (index.path, index.version, query.q, query.errors, query.score, query.limited, query.sort, query.desc)
        with self._lock:
            if key in self._selections:
                self._selections.move_to_end(key)
                return self._selections[key]
        chosen = select(index, query)
        with self._lock:
            self._selections[key] = chosen
            while len(self._selections) > _SELECTIONS:
                self._selections.popitem(last=False)
        return chosen
