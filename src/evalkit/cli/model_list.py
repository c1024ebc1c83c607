"""`--model a,b` and a repeated `--model`: the models a command evaluates."""

from __future__ import annotations

from evalkit.errors import ArgumentError


def parse_models(values: tuple[str, ...] | list[str]) -> str | list[str] | None:
    """The models named by each `--model` value, split at commas: None when none is given, the
    name when there is one, else the list in order (a name given twice runs once)."""
    names: list[str] = []
    for value in values:
        if not value.strip():
            raise ArgumentError("--model is empty: give provider/model (e.g. --model openai/gpt-4o), or leave it out "
                                "for the bundled model")
        parts = [part.strip() for part in value.split(",")]
        if not all(parts):
            raise ArgumentError(f"--model {value!r} names an empty model: give provider/model, several as "
                                "--model a,b or a repeated --model (leave it out for the bundled model)")
        names.extend(part for part in parts if part not in names)
    if not names:
        return None
    return names[0] if len(names) == 1 else names
