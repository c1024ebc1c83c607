"""What the viewer's JSON API answers: runs, one run, a page of its samples, one sample,
and a comparison of runs. Pure functions over index `Snapshot`s: each answer is computed from
the one snapshot of each log it was given, never from a newer state of the file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.analysis.compare import metric_table, score_differences
from evalkit.analysis.rows import content_text, input_text, run_row, sample_row, score_text, target_text
from evalkit.log.schema import EvalLog
from evalkit.log.validate import problem
from evalkit.view.index import Snapshot

EXCERPT = 300
MAX_PAGE = 500


@dataclass(frozen=True)
class SampleQuery:
    """Which samples the table shows and in what order."""

    q: str = ""
    errors: str = ""
    """"only" (samples that failed), "none" (samples that did not), or "" (all)."""
    score: str = ""
    """"scorer=value": samples whose scorer gave that value (as the table shows it)."""
    limited: bool = False
    sort: str = ""
    """"", "id", "epoch", "tokens", "time", "retries", "error" or "score:<scorer>"."""
    desc: bool = False
    offset: int = 0
    size: int = 50


def log_of(index: Snapshot) -> EvalLog:
    """The index's header and footer as an `EvalLog` (its samples are not loaded)."""
    return EvalLog(location=index.path, header=index.header or {}, footer=index.footer)


def run_summary(index: Snapshot, name: str) -> dict[str, Any]:
    """A run's row for the runs table, named by its path under the log folder."""
    return {**run_row(log_of(index), len(index.entries)), "log": name}


def run_detail(index: Snapshot, name: str) -> dict[str, Any]:
    """A run's metrics and settings, the scorers its samples use, and any lines left out."""
    header = index.header or {}
    settings = {key: header.get(key) for key in ("model_args", "model_roles", "config", "dataset", "epochs", "limit",
                                                 "sample_limits", "fail_on_error", "solver", "scorers", "task_origin",
                                                 "versions", "weights") if header.get(key) not in (None, {}, [])}
    return {**run_summary(index, name), "settings": settings, "footer": index.footer, "scorers": list(index.scorers),
            "score_values": index.memo("score_values", score_values), "problems": index.problems[:20]}


def score_values(index: Snapshot, most: int = 20) -> dict[str, list[tuple[str, int]]]:
    """For each scorer, its most frequent values (as the table shows them) and their counts."""
    counts: dict[str, Counter[str]] = {scorer: Counter() for scorer in index.scorers}
    for entry in index.entries:
        for scorer, value in entry.scores.items():
            counts[scorer][score_text(value)] += 1
    return {scorer: counter.most_common(most) for scorer, counter in counts.items()}


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, score_text(value))


def _sort_key(sort: str) -> Any:
    if sort.startswith("score:"):
        scorer = sort[len("score:"):]
        return lambda e: _sortable(e.scores.get(scorer))
    fields = {"id": lambda e: _sortable(e.id), "epoch": lambda e: e.epoch, "tokens": lambda e: e.tokens,
              "time": lambda e: e.time, "retries": lambda e: e.retries, "error": lambda e: e.error}
    return fields.get(sort)


def _matches(record: dict[str, Any], needle: str) -> bool:
    """Whether the lower-cased `needle` is in the sample's id, input, target, answer, error or messages."""
    texts = [str(record.get("id")), input_text(record.get("input", "")), target_text(record.get("target", "")),
             str((record.get("output") or {}).get("completion", "")), str(record.get("error") or "")]
    texts.extend(content_text(m.get("content")) for m in record.get("messages") or ())
    return any(needle in text.lower() for text in texts)


def _keep(query: SampleQuery) -> Any:
    """A test on an `Entry` for the query's filters, or None when there are none."""
    tests = []
    if query.errors == "only":
        tests.append(lambda e: e.error)
    elif query.errors == "none":
        tests.append(lambda e: not e.error)
    if query.limited:
        tests.append(lambda e: e.limit is not None)
    if query.score:
        scorer, _, wanted = query.score.partition("=")
        tests.append(lambda e: scorer in e.scores and score_text(e.scores[scorer]) == wanted)
    return (lambda e: all(test(e) for test in tests)) if tests else None


def select(index: Snapshot, query: SampleQuery) -> list[int]:
    """The positions of the samples the query shows, in its order."""
    entries = index.entries
    positions = index.search(query.q, _matches) if query.q.strip() else range(len(entries))
    keep = _keep(query)
    chosen = [p for p in positions if keep(entries[p])] if keep else list(positions)
    key = _sort_key(query.sort)
    if key is not None:
        chosen.sort(key=lambda p: key(entries[p]), reverse=query.desc)
    elif query.desc:
        chosen.reverse()
    return chosen


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def table_row(record: dict[str, Any], position: int) -> dict[str, Any]:
    """A sample as the table shows it: long texts cut, metadata left out."""
    row = sample_row(record)
    del row["metadata"]
    for name in ("input", "target", "answer"):
        row[name] = _excerpt(row[name])
    row["error"] = _excerpt(row["error"].splitlines()[0]) if row["error"] else None
    row["scores"] = {name: score_text(value) for name, value in row["scores"].items()}
    row["position"] = position
    return row


def sample_page(index: Snapshot, positions: list[int], query: SampleQuery) -> dict[str, Any]:
    """One page of the table: its rows and how many samples match in all."""
    size = max(1, min(query.size, MAX_PAGE))
    page = positions[query.offset: query.offset + size]
    rows = [table_row(record, p) for record, p in zip(index.records(page), page)]
    return {"total": len(positions), "samples": len(index.entries), "offset": query.offset, "rows": rows}


def sample_detail(index: Snapshot, position: int) -> dict[str, Any]:
    """One whole sample record (transcript, scores with explanations, usage, retries, error),
    and what is wrong with it if a field has the wrong type (the page then shows it raw)."""
    [record] = index.records([position])
    return {"position": position, "count": len(index.entries), "record": record, "problem": problem("sample", record)}


def compare_runs(indexes: Sequence[Snapshot], names: Sequence[str], offset: int, size: int) -> dict[str, Any]:
    """Metrics side by side and a page of the samples whose scores differ between runs."""
    logs = [log_of(index) for index in indexes]
    differing = score_differences([{key: indexes[i].entries[p].scores for key, p in index.positions.items()}
                                   for i, index in enumerate(indexes)])
    page = differing[offset: offset + max(1, min(size, MAX_PAGE))]
    rows = []
    for (sample_id, epoch), scores in page:
        cells = [None if s is None else {name: score_text(v) for name, v in s.items()} for s in scores]
        first = next(i for i, index in enumerate(indexes) if (str(sample_id), epoch) in index.positions)
        [record] = indexes[first].records([indexes[first].positions[(sample_id, epoch)]])
        rows.append({"id": record["id"], "epoch": epoch, "input": _excerpt(input_text(record.get("input", ""))),
                     "target": _excerpt(target_text(record.get("target", ""))), "scores": cells,
                     "positions": [index.positions.get((sample_id, epoch)) for index in indexes]})
    return {"runs": [run_summary(index, name) for index, name in zip(indexes, names)],
            "metrics": [{"scorer": s, "metric": m, "values": v} for s, m, v in metric_table(logs)],
            "total": len(differing), "offset": offset, "rows": rows}


def run_name(path: Path, log_dir: Path) -> str:
    return path.relative_to(log_dir).as_posix()
