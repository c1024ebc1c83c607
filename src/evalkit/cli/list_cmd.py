"""`evalkit list providers` and `evalkit list tasks FILE`."""

from __future__ import annotations

import click


@click.group("list")
def list_group() -> None:
    """List providers or tasks."""


@list_group.command("providers")
def list_providers() -> None:
    """Each provider: summary, whether its SDK is installed, its environment variables."""
    from evalkit.model.registry import providers

    rows = [
        (info.name, "yes" if info.sdk_installed() else f"no ({info.pip})", ", ".join(info.env) or "-", info.summary)
        for info in sorted(providers().values(), key=lambda p: p.name)
    ]
    headers = ("provider", "sdk installed", "environment", "summary")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(3)]
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])


@list_group.command("tasks")
@click.argument("file")
def list_tasks(file: str) -> None:
    """The @task functions in FILE."""
    from pathlib import Path

    from evalkit.task import find_task_functions

    for name in sorted(find_task_functions(Path(file))):
        click.echo(f"{file}@{name}")
