"""`evalkit secrets set|list|delete`: credentials kept out of code, shells and logs."""

from __future__ import annotations

import click


@click.group("secrets")
def secrets_group() -> None:
    """Store provider credentials (OS keyring, else a 0600 file in the user config dir)."""


@secrets_group.command("set")
@click.argument("name")
def set_secret(name: str) -> None:
    """Store NAME (e.g. OPENAI_API_KEY); the value is prompted for and not echoed."""
    from evalkit.errors import ArgumentError
    from evalkit.secrets import secret_store

    if not name.replace("_", "").isalnum():
        raise ArgumentError(f"secret names are letters, digits and _ (got '{name}'), e.g. OPENAI_API_KEY")
    value = click.prompt(f"Value for {name}", hide_input=True, err=True)
    store = secret_store()
    store.set(name, value)
    click.echo(f"stored {name} ({store.name})", err=True)


@secrets_group.command("list")
def list_secrets() -> None:
    """Names of the stored secrets (never their values)."""
    from evalkit.secrets import secret_store

    for name in secret_store().names():
        click.echo(name)


@secrets_group.command("delete")
@click.argument("name")
def delete_secret(name: str) -> None:
    """Remove NAME from the store."""
    from evalkit.errors import ArgumentError
    from evalkit.secrets import secret_store

    if not secret_store().delete(name):
        raise ArgumentError(f"no stored secret named {name} (see 'evalkit secrets list')")
    click.echo(f"deleted {name}", err=True)
