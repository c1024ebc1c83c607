"""How `hf-pipeline` reads each task's inputs from a chat, and how task outputs become answers.

The tasks with two inputs also take a last user message that is a JSON object with the input
names of the Snowflake Model Registry's Hugging Face pipeline signatures: question-answering
`{"question", "context"}`, table-question-answering `{"query", "table"}` and
text-classification `{"text", "text_pair"}` (text_pair optional).
"""

from __future__ import annotations

import ast
import io
import json
import re
from typing import Any

from evalkit.model.types import ChatMessage, input_text

_OPTION = re.compile(r"^\s*([A-Z])\)\s+(.+?)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^\s*(context|question)\s*:\s*", re.IGNORECASE | re.MULTILINE)
MAX_ANSWER_TOKENS = 30


def signature_fields(text: str, *names: str) -> dict[str, Any] | None:
    """`text` as a JSON object holding every one of `names`, else None (`text` is plain input)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        return None
    return fields if isinstance(fields, dict) and all(name in fields for name in names) else None


def system_text(messages: list[ChatMessage]) -> str:
    """The text of the system message(s), one per line ("" when there is none)."""
    return "\n".join(m.text for m in messages if m.role == "system")


def classification_input(messages: list[ChatMessage]) -> str | dict[str, str]:
    """The last user message, or the pair `{"text", "text_pair"}` it holds as JSON."""
    text = input_text(messages)
    fields = signature_fields(text, "text")
    if fields is None:
        return text
    pair = fields.get("text_pair")
    return {"text": str(fields["text"]), "text_pair": str(pair)} if pair else str(fields["text"])


def zero_shot_input(messages: list[ChatMessage]) -> tuple[str, tuple[str, ...]]:
    """The text to classify and the candidate labels from the prompt's `A) option` lines."""
    text = input_text(messages)
    options = _OPTION.findall(text)
    if not options:
        raise ValueError(
            "zero-shot-classification needs candidate labels: -M candidate_labels=[a, b] or "
            "'A) option' lines in the prompt (multiple_choice() writes them)"
        )
    return _OPTION.sub("", text).strip(), tuple(option for _, option in options)


def question_and_context(messages: list[ChatMessage]) -> tuple[str, str]:
    """(question, context): the JSON signature form, else the last user message and the system
    message(s), else the prompt's `Context:` and `Question:` sections."""
    question = input_text(messages)
    fields = signature_fields(question, "question", "context")
    if fields is not None:
        return str(fields["question"]), str(fields["context"])
    context = system_text(messages)
    if not context:
        parts = dict(zip(*[iter(_SECTION.split(question)[1:])] * 2))  # {"context": ..., "question": ...}
        sections = {name.lower(): value.strip() for name, value in parts.items()}
        context, question = sections.get("context", ""), sections.get("question", question)
    if not context:
        raise ValueError(
            "question-answering needs a context: a system message (e.g. system_message('{context}')), "
            "'Context: ...' and 'Question: ...' in the prompt, or {\"question\": ..., \"context\": ...}"
        )
    return question, context


def query_and_table(messages: list[ChatMessage]) -> tuple[str, Any]:
    """(query, table as a DataFrame of strings): the JSON signature form, else the last user
    message and the system message(s)."""
    query: str = input_text(messages)
    fields = signature_fields(query, "query", "table")
    table = fields["table"] if fields is not None else system_text(messages)
    if fields is not None:
        query = str(fields["query"])
    if not table:
        raise ValueError(
            "table-question-answering needs a table: a system message (e.g. system_message('{table}')) or "
            "{\"query\": ..., \"table\": ...}; the table as JSON {column: [values]} or CSV with a header row"
        )
    return query, parse_table(table)


def parse_table(table: str | dict[str, Any] | list[Any]) -> Any:
    """A DataFrame of strings from JSON `{column: [values]}` or `[{column: value}, ...]`, the
    same as a Python literal (what `{table}` writes for a dict in sample metadata), or CSV
    text with a header row."""
    import pandas as pd

    data = _structured(table) if isinstance(table, str) else table
    try:
        frame = pd.DataFrame(data) if data is not None else _csv(str(table))
    except ValueError as ex:
        raise ValueError(f"the table is not {{column: [values]}}, [{{column: value}}, ...] or CSV: {ex}") from ex
    if frame.empty:
        raise ValueError("the table has no rows (give {column: [values]} or CSV with a header row)")
    frame.columns = [str(column) for column in frame.columns]
    return frame.astype(str)


def _structured(text: str) -> dict[str, Any] | list[Any] | None:
    """`text` as JSON, else as a Python literal, when it is a dict or list; else None."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text.strip())
        except (ValueError, SyntaxError):
            continue
        return value if isinstance(value, (dict, list)) else None
    return None


def _csv(text: str) -> Any:
    import pandas as pd

    return pd.read_csv(io.StringIO(text.strip()), dtype=str, keep_default_na=False, skipinitialspace=True)


def table_answer(table: Any, coordinates: list[tuple[int, int]], aggregator: str, prefixed: bool) -> dict[str, Any]:
    """The pipeline's output for one table: the answer (`AGGREGATOR > ` before the cells when
    the model aggregates), the cells' coordinates (row, column), their texts, the aggregator."""
    cells = [str(table.iat[row, column]) for row, column in coordinates]
    answer = (f"{aggregator} > " if prefixed else "") + ", ".join(cells)
    return {"answer": answer, "coordinates": [[row, column] for row, column in coordinates], "cells": cells,
            "aggregator": aggregator}


def best_spans(start_logits: Any, end_logits: Any, allowed: list[int], k: int) -> list[tuple[int, int, float]]:
    """The `k` (start, end) token spans within `allowed` with the highest start*end probability,
    each at most MAX_ANSWER_TOKENS long, best first, with their probabilities."""
    import torch

    index = torch.tensor(allowed)
    starts = torch.softmax(start_logits[index].float(), -1)
    ends = torch.softmax(end_logits[index].float(), -1)
    scores = torch.tril(torch.triu(starts[:, None] * ends[None, :]), MAX_ANSWER_TOKENS - 1)
    top = torch.topk(scores.flatten(), min(k, scores.numel()))
    spans = []
    for score, flat in zip(top.values.tolist(), top.indices.tolist()):
        first, last = divmod(flat, len(allowed))
        if score > 0:  # spans ending before they start, or too long, score 0
            spans.append((allowed[first], allowed[last], score))
    return spans


def entities_text(entities: list[dict[str, Any]]) -> str:
    """Token-classification entities as `word (TYPE), word (TYPE), ...` (the group when the
    pipeline aggregated them, else the per-token entity)."""
    return ", ".join(f"{e['word'].strip()} ({e.get('entity_group') or e.get('entity')})" for e in entities)


def generated_text(generated: Any) -> str:
    """The new text of a text-generation result (a string, or the chat's last message)."""
    if isinstance(generated, list):
        return generated[-1]["content"] if generated else ""
    return str(generated)


def per_input(results: list[Any]) -> list[list[Any]]:
    """One ranked list per input: pipelines return a bare list for a batch of one."""
    return [results] if results and isinstance(results[0], dict) else results


def plain(value: Any) -> Any:
    """`value` with numpy and torch scalars turned into Python numbers (for the JSON log)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
