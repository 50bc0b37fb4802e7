"""decide_access: who may pass, as a table of cases."""

from __future__ import annotations

import pytest

from server.auth.decisions import (
    Access,
    Policy,
    TokenGrant,
    Visit,
    decide_access,
    is_loopback,
    is_public,
    parse_networks,
)

ON = Policy(enabled=True)
OFF = Policy(enabled=False)
LAN = Policy(enabled=True, trusted_networks=parse_networks(["192.168.1.0/24"]))
RW = TokenGrant("script", read_only=False)
RO = TokenGrant("home-assistant", read_only=True)


def visit(path: str = "/", method: str = "GET", client: str | None = "192.168.1.20", **facts: object) -> Visit:
    return Visit(path=path, method=method, client=client, **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(("policy", "facts", "expected"), [
    # no password yet: this machine's browser is let in, everyone else is asked to create one
    (ON, visit(client="127.0.0.1"), Access.ALLOW),
    (ON, visit(client="::1"), Access.ALLOW),
    (ON, visit(client="::ffff:127.0.0.1"), Access.ALLOW),
    (ON, visit(client="127.0.0.2"), Access.FIRST_RUN),
    (ON, visit(client="192.168.1.20"), Access.FIRST_RUN),
    (ON, visit(client=None), Access.FIRST_RUN),
    # ... unless a proxy relayed it: then 127.0.0.1 is the proxy, not the visitor
    (ON, visit(client="127.0.0.1", forwarded=True), Access.FIRST_RUN),
    # a password exists: loopback is no longer special
    (ON, visit(client="127.0.0.1", has_users=True), Access.LOGIN),
    (ON, visit(has_users=True), Access.LOGIN),
    (ON, visit(has_users=True, session_user="ann"), Access.ALLOW),
    (ON, visit(method="POST", has_users=True, session_user="ann"), Access.ALLOW),
    # tokens
    (ON, visit("/api/v1/printers", has_users=True, token=RW), Access.ALLOW),
    (ON, visit("/api/v1/printers/X/slots/0", "PUT", has_users=True, token=RW), Access.ALLOW),
    (ON, visit("/api/v1/printers", has_users=True, token=RO), Access.ALLOW),
    (ON, visit("/api/v1/printers", "HEAD", has_users=True, token=RO), Access.ALLOW),
    (ON, visit("/api/v1/printers/X/slots/0", "PUT", has_users=True, token=RO), Access.READ_ONLY),
    (ON, visit("/api/v1/printers/X/slots/0", "DELETE", has_users=True, token=RO), Access.READ_ONLY),
    (ON, visit("/api/v1/printers", has_users=True, bad_token=True), Access.LOGIN),
    # a wrong token is refused even where no sign-in would be needed
    (ON, visit("/api/v1/printers", client="127.0.0.1", bad_token=True), Access.LOGIN),
    (ON, visit("/api/v1/printers", has_users=True, session_user="ann", bad_token=True), Access.LOGIN),
    # public paths
    (ON, visit("/healthz", has_users=True), Access.ALLOW),
    (ON, visit("/login", "POST", has_users=True), Access.ALLOW),
    (ON, visit("/first-run", "POST"), Access.ALLOW),
    (ON, visit("/manifest.webmanifest", has_users=True), Access.ALLOW),
    (ON, visit("/static/app.css", has_users=True), Access.ALLOW),
    # trusted networks skip the sign-in, but not when relayed by a proxy
    (LAN, visit(has_users=True), Access.ALLOW),
    (LAN, visit(method="POST"), Access.ALLOW),
    (LAN, visit(client="192.168.2.20", has_users=True), Access.LOGIN),
    (LAN, visit(has_users=True, forwarded=True), Access.LOGIN),
    (LAN, visit("/api/v1/printers/X/slots/0", "PUT", has_users=True, token=RO), Access.READ_ONLY),
    # off (the demo, or [auth] required = false)
    (OFF, visit(has_users=True), Access.ALLOW),
    (OFF, visit("/api/v1/printers", "PUT", has_users=True), Access.ALLOW),
])
def test_decide_access(policy: Policy, facts: Visit, expected: Access) -> None:
    assert decide_access(policy, facts) is expected


def test_public_paths_are_exact() -> None:
    assert is_public("/static/vendor/htmx.js")
    assert not is_public("/static")  # the prefix needs its slash
    assert not is_public("/login/../api/v1/printers")  # never matched by prefix
    assert not is_public("/healthz/x")


@pytest.mark.parametrize(("client", "expected"), [
    ("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("127.0.0.2", False), ("10.0.0.1", False), ("testclient", False), ("", False), (None, False),
])
def test_loopback(client: str | None, expected: bool) -> None:
    assert is_loopback(client) is expected


def test_networks_parse_hosts_and_networks() -> None:
    assert [str(n) for n in parse_networks(["192.168.1.7/24", " 10.0.0.5 ", "fd00::/8"])] == [
        "192.168.1.0/24", "10.0.0.5/32", "fd00::/8"]
    with pytest.raises(ValueError):
        parse_networks(["192.168.1.0/33"])
