"""Which ``Host`` the web app answers to: the defence against DNS rebinding.

A page on ``evil.example`` whose name is re-pointed at this machine's address talks to Layerwise as
``evil.example``: same origin for the browser, so CSRF tokens do not help, but its ``Host`` header
still says ``evil.example``. Only the names this machine goes by pass: localhost and loopback, the
machine's own name (and ``<name>.local``), its addresses, the name in ``[server] base_url`` and
``[server] allowed_hosts``, and names only the home network resolves (single-label names, ``.lan``,
``.local``, ``.home.arpa``...). An IP-literal ``Host`` cannot come from a rebinding (the browser connected
to exactly that address): any private address passes (Docker: the host's LAN address is not the
container's); a public one must be the connection's own or an allowed network.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from litestar.types import ASGIApp, Receive, Scope, Send

from server.config import ServerConfig
from server.https.authority import HOME_SUFFIXES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_NETWORKS: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def host_name(header: str | None) -> str | None:
    """The name or address in a ``Host`` header, lower case, without port, brackets or a trailing dot."""
    if not header or any(c in header for c in "/@\\ \t") or len(header) > 300:
        return None
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:  # also "[::1" (an unclosed bracket)
        return None
    name = (parts.hostname or "").rstrip(".")
    return name or None


def ip_of(name: str) -> Address | None:
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])  # fe80::1%eth0: the zone is not the address
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str]
    networks: tuple[Network, ...]

    def permits(self, name: str, local_address: str | None = None) -> bool:
        address = ip_of(name)
        if address is None:
            return name in self.names or home_name(name)
        here = ip_of(local_address) if local_address else None
        # Any private address: a rebinding needs a name, and in Docker the phone's address for the host is
        # not the container's. A public address must be listed.
        return (address == here or address.is_private or address.is_link_local
                or any(address in network for network in self.networks))


def home_name(name: str) -> bool:
    """A name only the home network's own resolver answers (``printer-pi``, ``printer-pi.lan``, ``.home.arpa``):
    no outside site can re-point it, so it cannot carry a rebinding."""
    return "." not in name or any(name.endswith("." + suffix) for suffix in HOME_SUFFIXES if suffix != "localhost")


def host_problem(header: str | None, allowed: AllowedHosts, local_address: str | None) -> str | None:
    """Why a request's ``Host`` must be refused, or ``None``."""
    name = host_name(header)
    if name is None:
        return "Layerwise needs a valid Host header."
    if allowed.permits(name, local_address):
        return None
    return (f"Layerwise does not answer to the name {name!r}. If this is how you reach it, add it to "
            "[server] allowed_hosts (or LAYERWISE_ALLOWED_HOSTS) and restart Layerwise.")


def allowed_hosts(server: ServerConfig, hostname: str, addresses: Iterable[str]) -> AllowedHosts:
    names = {"localhost"}
    short = hostname.lower().rstrip(".").split(".")[0]
    if short:
        names |= {hostname.lower().rstrip("."), short, f"{short}.local"}
    if server.base_url and (base := urlsplit(server.base_url).hostname):
        names.add(base.lower().rstrip("."))
    networks: list[Network] = list(LOOPBACK_NETWORKS)
    for entry in (*server.allowed_hosts, *addresses, server.host):
        try:
            networks.append(ipaddress.ip_network(entry.split("%", 1)[0], strict=False))
        except ValueError:
            if entry and ":" not in entry:  # a name (server.host may be one too)
                names.add(entry.lower().rstrip("."))
    unspecified = {ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128")}
    return AllowedHosts(frozenset(names), tuple(n for n in networks if n not in unspecified))


@lru_cache(maxsize=1)
def machine_addresses() -> tuple[str, ...]:
    """This machine's addresses, as far as the standard library sees them without asking the network:
    the host name's addresses and the source addresses of the default routes (a UDP "connect" sends nothing)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        found |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found.add(str(probe.getsockname()[0]))
        except OSError:
            continue
    return tuple(sorted(found))


def for_server(server: ServerConfig) -> AllowedHosts:
    return allowed_hosts(server, socket.gethostname(), machine_addresses())


class HostCheck:
    """ASGI middleware: answers 400 with a plain explanation to a request whose ``Host`` is not allowed."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            server = scope.get("server")
            problem = host_problem(header, self.allowed, server[0] if server else None)
            if problem is not None:
                await _refuse(send, problem)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
