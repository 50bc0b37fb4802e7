"""Which addresses and names Layerwise's certificate must carry: pure choice, plus the look-up of this machine's.

In Docker's default bridge network the container does not know the address a phone uses (the NAS's
192.168.1.20), so the names a browser actually typed are learnt too (``learnable``): the Host of a plain
HTTP request, if it is a private address or a home-network name. Nothing else is ever learnt, so a forged
Host header cannot make the certificate name a public site.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import re
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from server.https.authority import HOME_SUFFIXES, PERMITTED_NETWORKS, is_ip

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LEARNT = 16


def _valid_dns(name: str) -> bool:
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in labels)


def _permitted_ip(text: str) -> bool:
    address = ipaddress.ip_address(text)
    # Link-local addresses need a zone (%eth0) to be typed into a URL: nobody reaches Layerwise by one.
    return not address.is_link_local and any(address in net for net in PERMITTED_NETWORKS)


def _normal(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    return str(ipaddress.ip_address(name)) if is_ip(name) else name


def wanted_names(hostname: str, addresses: Iterable[str], base_url: str | None,
                 learnt: Iterable[str] = ()) -> list[str]:
    """Every name the server certificate should carry, without repeats, best first (the first is its CN)."""
    names: list[str] = []

    def add(name: str) -> None:
        name = _normal(name)
        if not name or name in names:
            return
        if is_ip(name) and not _permitted_ip(name):
            return  # a public address: the authority may not sign for it (use a reverse proxy there)
        if not is_ip(name) and not _valid_dns(name):
            return
        names.append(name)

    host = _normal(hostname) if hostname else ""
    if host and not is_ip(host):
        add(host)
        if "." not in host:
            add(f"{host}.local")  # what mDNS (Avahi, Bonjour) answers for on a home network
    if base_url:
        parts = urlsplit(base_url)
        if parts.hostname:
            add(parts.hostname)
    for address in addresses:
        add(address)
    for name in learnt:
        add(name)
    for fixed in ("localhost", "127.0.0.1", "::1"):
        add(fixed)
    return names


def learnable(host_header: str | None) -> str | None:
    """The name a browser typed (Host header, port stripped) if the certificate may carry it, else None."""
    if not host_header:
        return None
    text = host_header.strip().lower()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.rstrip(".")
    if is_ip(text):
        return _normal(text) if _permitted_ip(text) else None
    if not _valid_dns(text):
        return None
    if "." not in text or any(text == s or text.endswith("." + s) for s in HOME_SUFFIXES):
        return text
    return None


def remember(learnt: list[str], name: str) -> list[str]:
    """``learnt`` with ``name`` last, at most ``MAX_LEARNT`` names (the oldest are dropped)."""
    return [*(n for n in learnt if n != name), name][-MAX_LEARNT:]


# ----- this machine's addresses (the adapter) -------------------------------------------------------------

_SIOCGIFADDR = 0x8915


def _ipv4_of(interface: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", interface.encode()[:15]))
        except OSError:
            return None  # no IPv4 address on this interface
    return socket.inet_ntoa(packed[20:24])


def _ipv6_addresses(path: Path = Path("/proc/net/if_inet6")) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return found


def local_addresses() -> list[str]:
    """This machine's (or container's) addresses: every interface's IPv4 address, IPv6 from /proc, and what
    the host name resolves to. Reads only local state; sends nothing on the network."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for _index, interface in socket.if_nameindex():
            address = _ipv4_of(interface)
            if address:
                found.append(address)
    found += _ipv6_addresses()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.append(str(info[4][0]).split("%", 1)[0])
    return list(dict.fromkeys(found))
