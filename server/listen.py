"""The web app's listening address: bind it first, and say it the way a user types it.

``serve`` and ``demo`` bind their port before they build anything else, so a port in use stops them
with one line (exit 2) before any printer is contacted or any job resumed.
"""

from __future__ import annotations

import errno
import socket

from server.web.embedded import bind_tcp

LOOPBACK = ("127.0.0.1", "::1", "localhost")
ALL_ADDRESSES = ("0.0.0.0", "::", "")


class PortUnavailable(Exception):
    """The web app cannot listen where it was told to."""


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) socket for the web app, or ``PortUnavailable`` with one line."""
    try:
        return bind_tcp(host, port)
    except OSError as err:
        where = _where(host, port)
        if err.errno == errno.EADDRINUSE:
            why = f"{where} is already in use (another Layerwise, or another program, listens there)"
        elif err.errno == errno.EACCES:
            why = f"{where} needs root privileges (ports below 1024)"
        elif err.errno == errno.EADDRNOTAVAIL or isinstance(err, socket.gaierror):
            why = f"{host!r} is not an address of this machine"
        else:
            why = f"cannot listen on {where} ({err.strerror or err})"
        raise PortUnavailable(f"{why}: stop the other program or choose another with --port "
                              "(or [server] port / host)") from None


def display_url(scheme: str, host: str, port: int) -> str:
    """The URL to open in a browser on this machine: ``localhost`` for loopback and all-addresses binds."""
    if host in LOOPBACK or host in ALL_ADDRESSES:
        return f"{scheme}://localhost:{port}"
    return f"{scheme}://{_where(host, port)}"
