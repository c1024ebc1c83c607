"""`evalkit cache list | clear | prune | path`, and the `--cache [EXPIRY]` option of `evalkit eval`."""

from __future__ import annotations

import click

from evalkit.errors import ArgumentError
from evalkit.model.cache import DEFAULT_EXPIRY, cache_dir, cache_file, expiry_seconds


def _check_expiry(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        expiry_seconds(value)
    except ArgumentError as ex:
        raise ArgumentError(f"--cache: {ex}; give --cache after the task files, or with an expiry (--cache 1W)") from None
    return value


cache_option = click.option(
    "--cache", is_flag=False, flag_value=DEFAULT_EXPIRY, default=None, metavar="[EXPIRY]", callback=_check_expiry,
    help=f"Serve model calls from the output cache and store new replies, kept for EXPIRY "
         f"(30s, 10m, 3h, 1D, 1W, 1M, 1Y; default {DEFAULT_EXPIRY}).",
)


@click.group("cache")
def cache_group() -> None:
    """Manage the model output cache (see --cache of evalkit eval)."""


@cache_group.command("list")
def list_command() -> None:
    """Cached outputs per model: entries, size and expired entries."""
    from evalkit.model.cache import open_store

    path = cache_file()
    rows = open_store().models() if path.exists() else []
    if not rows:
        click.echo(f"no cached outputs in {path}")
        return
    width = max(len("model"), *(len(r.model) for r in rows))
    click.echo(f"{'model':<{width}}  {'entries':>8}  {'size':>10}  {'expired':>8}")
    for row in rows:
        click.echo(f"{row.model:<{width}}  {row.entries:>8}  {_size(row.bytes):>10}  {row.expired:>8}")
    click.echo(f"{path} ({_size(path.stat().st_size)})")


@cache_group.command("clear")
@click.option("--all", "clear_all", is_flag=True, help="Clear every model's cached outputs.")
@click.option("--model", "models", multiple=True, metavar="PROVIDER/MODEL|ALIAS",
              help="Clear this model's cached outputs (repeatable); an alias clears those of the model it names.")
def clear_command(clear_all: bool, models: tuple[str, ...]) -> None:
    """Delete cached outputs: those of --model, or --all."""
    from evalkit.model.cache import open_store

    if clear_all == bool(models):
        raise ArgumentError("evalkit cache clear needs --all or --model PROVIDER/MODEL (not both)")
    names = None if clear_all else [_model_name(m) for m in models]
    deleted = open_store().clear(names) if cache_file().exists() else 0
    click.echo(f"cleared {deleted} cached outputs" + (f" of {', '.join(names)}" if names else ""))


def _model_name(model: str) -> str:
    """The provider/model the cache files entries under: an alias's model (entries are kept
    per provider/model, so this clears every alias of that model)."""
    from evalkit.model.aliases import find_alias

    alias = find_alias(model.strip())
    return alias.model if alias is not None else model.strip()


@cache_group.command("prune")
def prune_command() -> None:
    """Delete expired cached outputs."""
    from evalkit.model.cache import open_store

    deleted = open_store().prune() if cache_file().exists() else 0
    click.echo(f"pruned {deleted} expired cached outputs")


@cache_group.command("path")
def path_command() -> None:
    """Print the cache directory (EVALKIT_CACHE_DIR, else the user cache directory)."""
    click.echo(str(cache_dir()))


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
