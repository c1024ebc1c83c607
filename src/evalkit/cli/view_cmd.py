"""`evalkit view`: browse the logs of a folder in the browser."""

from __future__ import annotations

import click

from evalkit.view.server import DEFAULT_HOST, DEFAULT_PORT


@click.command("view")
@click.option("--log-dir", envvar="EVALKIT_LOG_DIR", default="logs", show_default=True, help="The folder of logs to show.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="The port to listen on (0: any free one).")
@click.option("--token", envvar="EVALKIT_VIEW_TOKEN", default=None,
              help="Access token every request must carry (a random one is made when --host is not loopback).")
def view_command(log_dir: str, host: str, port: int, token: str | None) -> None:
    """Serve a web page of the runs in LOG_DIR: runs, samples, transcripts, comparisons."""
    from evalkit.view.server import view

    view(log_dir, host, port, token)
