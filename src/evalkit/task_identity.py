"""Compares a log's recorded task identity with the task eval-retry reloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.errors import LogFileError

_PARTS = {
    "task": "the task name",
    "solver": "the solvers or their arguments",
    "scorers": "the scorers or their arguments",
    "config": "the task's generate config",
    "epochs": "the task's epochs",
    "reducers": "the epoch reducers",
    "dataset": "the dataset",
}


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def identity_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One phrase per part of the identity that differs, e.g. `the scorers or their
    arguments ([...] -> [...])`; the dataset is named without its fingerprints."""
    changes = []
    for key in dict.fromkeys([*_PARTS, *current]):  # a part added to Task.identity() is compared too
        if recorded.get(key) == current.get(key):
            continue
        label = _PARTS.get(key, key)
        changes.append(label if key == "dataset" else f"{label} ({_show(recorded.get(key))} -> {_show(current.get(key))})")
    return changes


def check_same_task(header: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume `path` with a task that differs from the one that wrote it."""
    recorded = header.get("identity")
    if recorded is None:  # written before identities were recorded: only the dataset is known
        recorded, current = {"dataset": header["dataset"]["fingerprint"]}, {"dataset": current["dataset"]}
    changes = identity_changes(recorded, current)
    if changes:
        raise LogFileError(f"{path}: the task changed since this log was written: {'; '.join(changes)}; "
                           "run it afresh with evalkit eval")
