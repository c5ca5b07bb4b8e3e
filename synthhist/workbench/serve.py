"""Start the workbench server: host safety (token off loopback), the printed URL, uvicorn on a bound socket."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from pathlib import Path

from synthhist.errors import UserError
from synthhist.workbench.app import LOOPBACK_HOSTS, WorkbenchConfig, create_app


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1 addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free port); UserError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror} (try another --port)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def allowed_hosts(host: str) -> list[str] | None:
    """Host headers accepted for a bind address: the loopback names and the address itself; None (any) elsewhere."""
    return [*LOOPBACK_HOSTS, host] if is_loopback(host) else None


def serve(host: str, port: int, token: str | None, data_dirs: list[Path], device: str | None,
          network: str | None, classifier: str | None, gan_um: float | None = None,
          results_dir: Path | None = None, real: Path | None = None) -> None:
    """Load what was asked, print the URL, and serve until interrupted."""
    import uvicorn

    loopback = is_loopback(host)
    if not loopback:
        print(f"WARNING: listening on {host}, reachable from other machines; every request needs the token. "
              "Prefer the default 127.0.0.1 with an SSH tunnel.", file=sys.stderr)
        token = token or secrets.token_urlsafe(24)
    config = WorkbenchConfig(data_dirs=data_dirs, token=token, device=device, network=network,
                             classifier=classifier, gan_um=gan_um, allowed_hosts=allowed_hosts(host),
                             results_dir=results_dir or Path.cwd() / "teach-results", real=real)
    app = create_app(config)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    query = f"/?token={token}" if token else "/"
    print(f"Workbench running at http://{url_host}:{port}{query}", flush=True)
    if host in ("0.0.0.0", "::"):
        print(f"From other machines: http://{socket.gethostname()}:{port}{query}", flush=True)
    if loopback:
        print(f"Over SSH: ssh -N -L {port}:127.0.0.1:{port} USER@THIS_HOST, then open "
              f"http://localhost:{port}{query}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
