"""`evalkit providers status [NAME...] [--check MODEL]`."""

from __future__ import annotations

import click


@click.group("providers")
def providers_group() -> None:
    """Provider health: SDKs, credentials, and a live check."""


@providers_group.command("status")
@click.argument("names", nargs=-1)
@click.option("--check", "check_model", metavar="MODEL", help="Also send one minimal request to provider/model.")
@click.option("-M", "--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Arguments for the --check model.")
def status(names: tuple[str, ...], check_model: str | None, model_args: tuple[str, ...]) -> None:
    """For each provider: SDK installed, credentials present (never shown), and optionally
    whether one minimal request to MODEL succeeds (exit status 1 when it does not). For
    transform, the key variable the spec names (api_key_env) is looked up too."""
    from evalkit.cli.args import parse_key_values
    from evalkit.model.registry import provider_info, providers, split_model_name
    from evalkit.secrets import secret_source

    selected = [provider_info(n) for n in names] if names else sorted(providers().values(), key=lambda p: p.name)
    rows = [("provider", "sdk", "credentials", "check")]
    checked_provider = split_model_name(check_model)[0] if check_model else None
    args = parse_key_values(model_args, "-M")
    for info in selected:
        sdk = "installed" if info.sdk_installed() else f"missing: pip install {info.pip}"
        found = {name: secret_source(name) for name in _env_names(info.name, info.env, args)}
        present = [f"{name} ({source})" for name, source in found.items() if source]
        credentials = ", ".join(present) if present else ("not needed" if not info.env else "none set")
        check = "-"
        if check_model and info.name == checked_provider:
            check = _check(check_model, args)
        rows.append((info.name, sdk, credentials, check))
    if check_model and checked_provider not in {info.name for info in selected}:
        rows.append((checked_provider or "", "", "", _check(check_model, args)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    if check_model and any(row[3].startswith("failed") for row in rows[1:]):
        raise SystemExit(1)


def _env_names(provider: str, names: tuple[str, ...], model_args: dict[str, object]) -> tuple[str, ...]:
    """The variables to look up for `provider`: its own, and for transform the key variable
    its spec (-M spec=, else EVALKIT_TRANSFORM_SPEC) names."""
    if provider != "transform":
        return names
    try:
        from evalkit.providers.http.transform import load_spec

        spec = model_args.get("spec")
        key_env = load_spec(spec if isinstance(spec, (str, dict)) else None).api_key_env
    except Exception:  # no spec, a bad spec or no jmespath: the spec's own error shows at --check or eval
        return names
    return names if key_env in names else (*names, key_env)


def _check(model: str, model_args: dict[str, object]) -> str:
    """"ok (N ms)" when one minimal request succeeds, else the reason, on one line."""
    import time

    import anyio

    from evalkit.model.model import get_model
    from evalkit.model.types import GenerateConfig
    from evalkit.secrets import excerpt

    async def probe() -> str:
        model_object = get_model(model, config=GenerateConfig(max_tokens=1, max_retries=0, timeout=30), **model_args)
        try:
            start = time.monotonic()
            await model_object.generate("Say OK.")
            return f"ok ({(time.monotonic() - start) * 1000:.0f} ms)"
        finally:
            await model_object.aclose()

    try:
        return anyio.run(probe)
    except Exception as ex:
        return excerpt(f"failed: {type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}", 200)
