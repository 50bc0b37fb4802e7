"""Who may pass: one pure function, ``decide_access``, over the facts of one request."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Reachable without signing in: the health check, the sign-in and first-run pages, and what a browser
# fetches to draw them (the web manifest and static files: no data in either), and the language picker
# those pages show (it only sets this browser's language cookie).
PUBLIC_PATHS = frozenset({"/healthz", "/login", "/first-run", "/manifest.webmanifest", "/language"})
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(StrEnum):
    ALLOW = "allow"
    LOGIN = "login"          # sign in first (a page: the sign-in form; the API: 401)
    FIRST_RUN = "first-run"  # no password exists yet: create one first
    READ_ONLY = "read-only"  # a read-only token asked to change something: 403


@dataclass(frozen=True)
class TokenGrant:
    """What a valid API token allows: its name (for the log) and whether it may only read."""

    name: str
    read_only: bool


@dataclass(frozen=True)
class Policy:
    enabled: bool  # False for the demo and for `[auth] required = false`
    trusted_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class Visit:
    path: str
    method: str
    client: str | None  # the peer's address as the socket saw it
    forwarded: bool = False  # a proxy relayed it (Forwarded / X-Forwarded-For): the peer is not the visitor
    has_users: bool = False
    session_user: str | None = None
    token: TokenGrant | None = None
    bad_token: bool = False  # an Authorization header was sent and is not a valid token


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def parse_address(client: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:192.168.1.5 on a dual-stack socket
    return mapped or address


def is_loopback(client: str | None) -> bool:
    """127.0.0.1 and ::1 only: this machine's own browser. (127.0.0.0/8's other addresses are loopback to
    the kernel, but the tests stand for "another machine" with 127.0.0.2, and nobody browses from it.)"""
    address = parse_address(client)
    return address is not None and str(address) in ("127.0.0.1", "::1")


def in_networks(client: str | None, networks: Sequence[IPNetwork]) -> bool:
    address = parse_address(client)
    return address is not None and any(address in network for network in networks)


def decide_access(policy: Policy, visit: Visit) -> Access:
    if is_public(visit.path) or not policy.enabled:
        return Access.ALLOW
    if visit.token is not None:
        if visit.token.read_only and visit.method.upper() not in SAFE_METHODS:
            return Access.READ_ONLY
        return Access.ALLOW
    if visit.bad_token:  # a script with a wrong or revoked token is told so, never let in on other grounds
        return Access.LOGIN
    if visit.session_user is not None:
        return Access.ALLOW
    local = not visit.forwarded  # behind a proxy the peer address says nothing about the visitor
    if local and policy.trusted_networks and in_networks(visit.client, policy.trusted_networks):
        return Access.ALLOW
    if not visit.has_users:
        return Access.ALLOW if local and is_loopback(visit.client) else Access.FIRST_RUN
    return Access.LOGIN


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """``["192.168.1.0/24", "10.0.0.5"]`` as networks (``ValueError`` names a bad one)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)
