"""nstyle studio: a local web page to make runs, watch them live and steer them.

``serve()`` starts the app (``nstyle.studio.server``) on uvicorn. It listens on 127.0.0.1
unless told otherwise; bound beyond loopback, every request must carry a token (printed
with the address), as Jupyter does. Runs and uploads live under one data folder and are
listed again after a restart (``nstyle.studio.store``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import webbrowser
from pathlib import Path

from ..errors import NStyleError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/nstyle/studio (~/.local/share/nstyle/studio)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nstyle" / "studio"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, data: str | Path | None = None, open_page: bool = False,
    workers: int = 1, token: str | None = None, max_upload_mb: float = 64, say=print,
) -> None:
    """Run the studio until interrupted. A token is made (and required) when ``host`` is not
    loopback and none is given; a given token is always required."""
    try:
        import uvicorn

        from .server import create_app
    except ModuleNotFoundError as e:
        raise NStyleError(f"the studio needs {e.name} (pip install 'nstyle[studio]')") from None
    if not 1 <= port <= 65535:
        raise NStyleError(f"port {port} is out of range (1 to 65535)")
    if workers < 1:
        raise NStyleError(f"workers must be at least 1, got {workers}")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    folder = Path(data) if data is not None else default_data_dir()
    app = create_app(folder, workers=workers, token=token, max_upload_mb=max_upload_mb)
    url = address(host, port, token)
    say(f"nstyle studio: {url}  (data: {folder})")
    if token and not is_loopback(host):
        say(f"listening on {host}, beyond this machine: every request needs the token in that address")
    if open_page:
        webbrowser.open(url)
    # Open event streams never end by themselves: give them a moment, then close them.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
