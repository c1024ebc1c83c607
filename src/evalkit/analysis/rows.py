"""Flat summaries of runs and samples: the rows behind `log list`, the viewer's tables,
`evals_df`/`samples_df` and `log export`."""

from __future__ import annotations

from typing import Any

import orjson

from evalkit.log.schema import EvalLog


def content_text(content: Any) -> str:
    """The text of a message's content: a string as is, a list of parts as its text parts
    (an image stands as "[image]"; reasoning is left out)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        elif isinstance(part, dict) and part.get("type") == "image":
            texts.append("[image]")
    return "\n".join(texts)


def input_text(value: Any) -> str:
    """A sample's input as text: a string as is; a list of messages as their contents, one per line."""
    if isinstance(value, list):
        return "\n".join(content_text(m.get("content")) for m in value if isinstance(m, dict))
    return str(value)


def target_text(value: Any) -> str:
    return " | ".join(map(str, value)) if isinstance(value, list) else str(value)


def score_text(value: Any) -> str:
    """A score value as one short string (a dict or list of values as JSON)."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def sample_row(record: dict[str, Any]) -> dict[str, Any]:
    """The flat summary of one sample record (a log line or `EvalSample.to_dict()`)."""
    output = record.get("output") or {}
    usage = record.get("usage") or {}
    limit = record.get("limit")
    return {
        "id": record["id"],
        "epoch": record.get("epoch", 1),
        "input": input_text(record.get("input", "")),
        "target": target_text(record.get("target", "")),
        "answer": output.get("completion", ""),
        "scores": {name: score.get("value") for name, score in (record.get("scores") or {}).items()},
        "error": record.get("error"),
        "retries": len(record.get("retries") or ()),
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
        "time": record.get("time", 0.0),
        "limit": limit.get("type") if isinstance(limit, dict) else None,
        "metadata": record.get("metadata") or {},
    }


def run_row(log: EvalLog, samples: int | None = None) -> dict[str, Any]:
    """The flat summary of one run from its header and footer (`samples`: how many sample
    lines the log holds, for a run with no footer yet)."""
    footer = log.footer or {}
    counts = footer.get("counts") or {}
    done = counts.get("completed", 0) + counts.get("errors", 0) if counts else samples
    return {
        "log": str(log.location),
        "eval_id": log.eval_id,
        "task": log.task,
        "model": log.model,
        "status": log.status,
        "metrics": log.results,
        "samples": done,
        "total": counts.get("total", log.header.get("dataset", {}).get("samples", 0) * log.header.get("epochs", 1)),
        "errors": counts.get("errors"),
        "tokens": sum(u.get("total_tokens", 0) for u in (footer.get("usage") or {}).values()) if footer else None,
        "duration": footer.get("duration"),
        "started": log.header.get("started"),
        "completed": footer.get("completed"),
        "error": log.error,
    }


def count_lines(path: Any) -> int:
    """The number of sample lines a log holds so far (its lines, less the header and the
    batch records of batch mode)."""
    lines = batches = 0
    marker = b'\n{"batch":'
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            batches += (tail + chunk).count(marker)
            tail = chunk[-(len(marker) - 1):]
    return max(lines - 1 - batches, 0)
