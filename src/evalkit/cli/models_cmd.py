"""`evalkit models list`: the model aliases of the models files."""

from __future__ import annotations

import json

import click


@click.group("models")
def models_group() -> None:
    """Named model configurations (aliases) from evalkit.yaml and the user's models.yaml."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the aliases as JSON.")
def list_models(as_json: bool) -> None:
    """Each alias: the file declaring it, the provider/model, base URL and arguments (credentials
    redacted; ${env:...} and ${secret:...} references shown as written, never resolved)."""
    from evalkit.model.aliases import model_aliases, models_files

    records = [alias.record() for alias in model_aliases().values()]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("No model aliases; declare them under 'models:' in " + " or ".join(str(p) for p in models_files()))
        return
    rows = [("alias", "model", "base_url", "source", "args / config")]
    for record in records:
        args = dict(record["args"])
        base_url = str(args.pop("base_url", "") or "-")
        settings = {**args, **record["config"]}
        rows.append((record["name"], record["model"], base_url, record["source"],
                     " ".join(f"{k}={json.dumps(v)}" for k, v in settings.items()) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])
