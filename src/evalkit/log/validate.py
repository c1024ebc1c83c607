"""Checks the fields of a log's header, sample and footer records before they are used, so a
damaged or hand-edited log fails with the field that is wrong instead of a traceback later."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rule = tuple[Callable[[Any], bool], str]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is_text_or_list(value: Any) -> bool:
    return isinstance(value, (str, list))


def _is_dict_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _is_positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _is_limit(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and _is_int(value[0])
            and (value[1] is None or _is_int(value[1])))


def _is_origin(value: Any) -> bool:
    return (isinstance(value, dict) and _is_str(value.get("file")) and _is_str(value.get("name"))
            and _optional(_is_dict)(value.get("args")))


def _is_dataset(value: Any) -> bool:
    return isinstance(value, dict) and _is_str(value.get("fingerprint"))


def _is_scores(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(score, dict) and "value" in score for score in value.values())


def _is_usage(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_int(count) for count in value.values())


_STRING: Rule = (_is_str, "a string")
_OBJECT: Rule = (_is_dict, "an object")

HEADER: dict[str, Rule] = {
    "eval_id": _STRING,
    "task": _STRING,
    "model": _STRING,
    "format": (_is_int, "a whole number"),
    "task_origin": (_optional(_is_origin), "null or an object with string 'file' and 'name' and an object 'args'"),
    "model_args": _OBJECT,
    "config": _OBJECT,
    "dataset": (_is_dataset, "an object with a string 'fingerprint'"),
    "epochs": (_is_positive_int, "a whole number of at least 1"),
    "limit": (_is_limit, "a list [start, stop] of whole numbers (stop may be null)"),
    "fail_on_error": (lambda value: isinstance(value, (bool, int, float)), "true, false or a number"),
    "scorers": (lambda value: isinstance(value, list), "a list"),
}

SAMPLE: dict[str, Rule] = {
    "id": (lambda value: _is_str(value) or _is_int(value), "a string or a whole number"),
    "epoch": (_is_positive_int, "a whole number of at least 1"),
    "input": (_is_text_or_list, "a string or a list of messages"),
    "target": (_is_text_or_list, "a string or a list of strings"),
    "messages": (_is_dict_list, "a list of message objects"),
    "output": (_optional(_is_dict), "null or an object"),
    "scores": (_is_scores, "an object whose entries are objects with a 'value'"),
    "metadata": (_optional(_is_dict), "null or an object"),
    "state_metadata": (_optional(_is_dict), "null or an object"),
    "usage": (_optional(_is_usage), "null or an object of token counts"),
    "time": (_is_number, "a number of seconds"),
    "error": (_optional(_is_str), "null or a string"),
    "retries": (_optional(_is_dict_list), "null or a list of objects"),
    "limit": (_optional(_is_dict), "null or an object"),
    "cache_hits": (_optional(_is_int), "null or a whole number"),
}

FOOTER: dict[str, Rule] = {
    "status": (lambda value: value in ("started", "success", "error", "cancelled"),
               "one of started, success, error, cancelled"),
    "results": (lambda value: isinstance(value, dict) and all(isinstance(m, dict) for m in value.values()),
                "an object of metrics per scorer"),
    "counts": (lambda value: isinstance(value, dict) and all(_is_int(n) for n in value.values()),
               "an object of whole numbers"),
    "usage": (lambda value: isinstance(value, dict) and all(_is_usage(u) for u in value.values()),
              "an object of token counts per model"),
    "retries": (_is_int, "a whole number"),
    "duration": (_is_number, "a number of seconds"),
    "error": (_optional(_is_str), "null or a string"),
}

BATCH: dict[str, Rule] = {
    "id": _STRING,
    "provider": _STRING,
    "model": _STRING,
    "custom_ids": (lambda value: isinstance(value, list) and all(_is_str(item) for item in value), "a list of strings"),
    "created": (_is_number, "a number (seconds since the epoch)"),
}

REQUIRED = {"header": ("eval_id", "task", "model"), "sample": ("id",), "footer": ("status",), "batch": ("id", "custom_ids")}
RULES = {"header": HEADER, "sample": SAMPLE, "footer": FOOTER, "batch": BATCH}


def problem(kind: str, record: Any) -> str | None:
    """What is wrong with a `kind` ("header", "sample", "footer" or "batch") record, or None when
    every field it has is of the right type and the required ones are there."""
    if not isinstance(record, dict):
        return f"the {kind} is not an object"
    for name in REQUIRED[kind]:
        if name not in record:
            return f"the {kind} lacks the field '{name}'"
    for name, (check, expected) in RULES[kind].items():
        if name in record and not check(record[name]):
            return f"{kind} field '{name}' should be {expected} (found {_kind_of(record[name])})"
    return None


def _kind_of(value: Any) -> str:
    """The JSON kind of `value`, never the value itself (it may hold a credential)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    names = {str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)
