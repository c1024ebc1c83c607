"""`evalkit view`: serves the viewer app on a socket bound before uvicorn starts, so a port
in use is one clear error."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from pathlib import Path

from evalkit.errors import ArgumentError, LogFileError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7575


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_log_dir(log_dir: Path) -> Path:
    if not log_dir.is_dir():
        what = "is a file, not a folder" if log_dir.exists() else "does not exist"
        raise LogFileError(f"log folder {log_dir} {what}; pass --log-dir with the folder your runs wrote to")
    return log_dir


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or one line saying why there cannot be one."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise ArgumentError(f"--host {host} is not an address or a name this machine can resolve") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as ex:
        sock.close()
        if ex.errno == 98 or "in use" in str(ex).lower():
            raise ArgumentError(f"port {port} is in use on {host}; pass another --port (or stop the other server)") from None
        raise ArgumentError(f"cannot listen on {host}:{port}: {ex.strerror or ex}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def view(log_dir: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None) -> None:
    """Serve the viewer for `log_dir` until interrupted. Away from the loopback interface an
    access token is always required: `token`, else a random one printed in the URL."""
    import uvicorn

    from evalkit.view.app import create_app

    folder = check_log_dir(Path(log_dir))
    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(18)
    sock = bind(host, port)
    shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}/" + (f"?token={token}" if token else "")
    print(f"evalkit view: {folder} at {url}  (Ctrl+C to stop)", flush=True)
    app = create_app(folder, token=token, loopback_only=loopback and not token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
