"""Access control through real sockets: 127.0.0.2 stands for another machine on the network.

The server listens on 127.0.0.1; a client bound to 127.0.0.2 reaches it from a different source
address, which the server sees as not this machine's own browser.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request

from server.auth import store
from server.auth.decisions import TokenGrant, is_public
from server.auth.gate import AUTH_OFF_WARNING, NO_PASSWORD_WARNING
from server.config import AuthConfig, ServerConfig, Settings
from server.runtime import Runtime
from server.sim.printer.certs import ensure_certificates
from server.web.app import create_app
from server.web.auth_pages import bearer_grant
from server.web.embedded import EmbeddedServer
from tests.web.credentials import csrf_pair

PASSWORD = "correct horse"
# What anyone may fetch without signing in (anything else in the route table must refuse).
PUBLIC = {"/healthz", "/login", "/first-run", "/manifest.webmanifest", "/language", "/static/{file_path:path}"}


@dataclass
class Site:
    app: Litestar
    runtime: Runtime
    local: httpx.AsyncClient  # from 127.0.0.1: this machine
    other: httpx.AsyncClient  # from 127.0.0.2: another machine

    async def csrf(self, client: httpx.AsyncClient, page: str) -> str:
        answer = await client.get(page)
        assert answer.status_code == 200, answer.text
        return re.search(r'name="csrf_token" value="([^"]+)"', answer.text).group(1)  # type: ignore[union-attr]

    async def sign_in(self, client: httpx.AsyncClient, name: str = "ann", password: str = PASSWORD) -> httpx.Response:
        token = await self.csrf(client, "/login")
        return await client.post("/login", data={"csrf_token": token, "name": name, "password": password})


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., SiteRunner]:
    return lambda **options: SiteRunner(tmp_path, **options)


class SiteRunner:
    """A site on its own data directory: `async with make_site(...) as site`."""

    def __init__(self, tmp_path: Path, *, auth: AuthConfig | None = None, demo: bool = False,
                 https: bool = False) -> None:
        self.settings = Settings(server=ServerConfig(data_dir=tmp_path / "data"), auth=auth or AuthConfig())
        self.demo = demo
        self.certs = ensure_certificates(tmp_path / "certs", "layerwise-test") if https else None

    async def __aenter__(self) -> Site:
        self.runtime = Runtime.build(self.settings)
        self.app = create_app(self.runtime, demo=self.demo)
        self.web = EmbeddedServer(self.app, "127.0.0.1", 0, lifespan="on", name="layerwise",
                                  certfile=self.certs.chain if self.certs else None,
                                  keyfile=self.certs.key if self.certs else None)
        await self.web.start()
        verify: ssl.SSLContext | bool = True
        if self.certs is not None:  # the certificate names a serial, not the address: trust its CA, skip the name
            verify = ssl.create_default_context(cafile=str(self.certs.ca_cert))
            verify.check_hostname = False
        self.local = httpx.AsyncClient(base_url=self.web.url, timeout=20, verify=verify)
        self.other = httpx.AsyncClient(base_url=self.web.url, timeout=20, transport=httpx.AsyncHTTPTransport(
            local_address="127.0.0.2", verify=verify))
        return Site(self.app, self.runtime, self.local, self.other)

    async def __aexit__(self, *exc: object) -> None:
        await self.local.aclose()
        await self.other.aclose()
        await self.web.stop()


@pytest.fixture
async def site(make_site: Callable[..., SiteRunner]) -> AsyncIterator[Site]:
    async with make_site() as built:
        yield built


def routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path as registered, a path to request) for every route the app has."""
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", ()) or ()):
            if method != "OPTIONS":
                found.append((method, route.path, re.sub(r"\{[^}]*\}", "1", route.path)))
    return found


async def test_no_password_open_here_first_run_elsewhere(site: Site) -> None:
    assert (await site.local.get("/")).status_code == 200
    assert (await site.local.get("/api/v1/printers")).status_code == 200
    answer = await site.other.get("/jobs?page=2")
    assert (answer.status_code, answer.headers["location"]) == (303, "/first-run?next=%2Fjobs%3Fpage%3D2")
    api = await site.other.get("/api/v1/printers")
    assert api.status_code == 401 and "first-run" in api.json()["detail"]
    assert (await site.other.get("/login")).headers["location"] == "/first-run?next=%2F"


async def test_first_run_creates_the_password_and_signs_in(site: Site) -> None:
    token = await site.csrf(site.other, "/first-run?next=/jobs")
    refused = await site.other.post("/first-run", data={"name": "ann", "password": PASSWORD, "again": PASSWORD})
    assert refused.status_code == 400 and "CSRF" in refused.text  # the form must carry the token
    differ = await site.other.post("/first-run", data={"csrf_token": token, "name": "ann", "password": PASSWORD,
                                                       "again": "other horse"})
    assert differ.status_code == 400 and "differ" in differ.text
    made = await site.other.post("/first-run", data={"csrf_token": token, "name": "ann", "password": PASSWORD,
                                                     "again": PASSWORD, "next": "/jobs"})
    assert (made.status_code, made.headers["location"]) == (303, "/jobs")
    cookie = made.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=15552000" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
    assert (await site.other.get("/")).status_code == 200
    # once a password exists, the first-run page is gone and this machine must sign in too
    assert (await site.other.get("/first-run")).headers["location"] == "/login"
    assert (await site.local.get("/")).status_code == 303


async def test_over_https_the_session_cookie_is_secure(make_site: Callable[..., SiteRunner]) -> None:
    async with make_site(https=True) as site:
        await store_user(site)
        signed = await site.sign_in(site.other)
        assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]
        assert (await site.other.get("/")).status_code == 200


async def test_with_a_password_every_route_but_the_public_ones_refuses(site: Site) -> None:
    await store_user(site)
    answers = {}
    for method, path, url in routes(site.app):
        for client in (site.other, site.local):
            answer = await client.request(method, url)
            answers[(method, path)] = answer.status_code
            if path in PUBLIC:
                continue
            assert answer.status_code in (401, 303), (method, path, answer.status_code)
            if answer.status_code == 303:
                assert answer.headers["location"].startswith("/login?next=")
    assert {path for _, path, _ in routes(site.app) if is_public(path.replace("{file_path:path}", "x"))} == PUBLIC
    assert len(answers) > 30  # the table really was walked (pages, API, schema, events)
    assert answers[("GET", "/healthz")] == 200 and answers[("GET", "/manifest.webmanifest")] == 200


async def store_user(site: Site) -> None:
    store.set_password(site.runtime.db, "ann", PASSWORD)


async def test_sign_in_and_out(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await store_user(site)
    wrong = await site.sign_in(site.other, password="wrong horse")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    signed = await site.sign_in(site.other)
    assert (signed.status_code, signed.headers["location"]) == (303, "/")
    dashboard = await site.other.get("/")
    assert dashboard.status_code == 200 and 'action="/logout"' in dashboard.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', dashboard.text).group(1)  # type: ignore[union-attr]
    out = await site.other.post("/logout", data={"csrf_token": token})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert (await site.other.get("/")).status_code == 303
    assert (await site.other.get("/api/v1/printers")).status_code == 401
    # secrets never reach the server's log: not the password tried, not the right one, no hash, no session id
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "failed sign-in from 127.0.0.2" in logged
    for secret in ("wrong horse", PASSWORD, "$argon2", signed.cookies["layerwise_session"]):
        assert secret not in logged


async def test_sessions_survive_a_restart(make_site: Callable[..., SiteRunner]) -> None:
    async with make_site() as first:
        await store_user(first)
        await first.sign_in(first.other)
        cookie = first.other.cookies["layerwise_session"]
    async with make_site() as second:
        second.other.cookies.set("layerwise_session", cookie)
        assert (await second.other.get("/")).status_code == 200


async def test_login_rate_limit(site: Site) -> None:
    await store_user(site)
    for _ in range(5):
        assert (await site.sign_in(site.other, password="wrong horse")).status_code == 401
    limited = await site.sign_in(site.other)  # even the right password waits now
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 900
    # another address is limited for the same name
    assert (await site.sign_in(site.local)).status_code == 429
    assert (await site.sign_in(site.local, name="bob")).status_code == 401  # not for another name


async def test_tokens_for_the_api(site: Site) -> None:
    await store_user(site)
    writer = store.create_token(site.runtime.db, "script")
    reader = store.create_token(site.runtime.db, "home-assistant", read_only=True)
    slot = "/api/v1/printers/None/slots/0"
    as_writer = {"Authorization": f"Bearer {writer}"}
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert (await site.other.get("/api/v1/printers", headers=as_reader)).status_code == 200
    assert (await site.other.get("/api/v1/printers", headers=as_writer)).status_code == 200
    read_only = await site.other.put(slot, json={"spool_id": 1}, headers=as_reader)
    assert read_only.status_code == 403 and "only read" in read_only.json()["detail"]
    assert (await site.other.put(slot, json={"spool_id": 1}, headers=as_writer)).status_code == 404  # no printer
    bad = await site.other.get("/api/v1/printers", headers={"Authorization": f"Bearer {writer[:-2]}xx"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    store.revoke_token(site.runtime.db, "script")
    assert (await site.other.get("/api/v1/printers", headers=as_writer)).status_code == 401
    assert site.app.state.auth.verify_bearer(reader).read_only  # the seam for the CSRF check


async def test_htmx_is_told_where_to_sign_in(site: Site) -> None:
    await store_user(site)
    answer = await site.other.get("/connect", headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["hx-redirect"] == "/login"


async def test_trusted_networks_skip_the_sign_in(make_site: Callable[..., SiteRunner]) -> None:
    async with make_site(auth=AuthConfig(trusted_networks=("127.0.0.2/32",))) as site:
        await store_user(site)
        assert (await site.other.get("/")).status_code == 200
        assert (await site.other.get("/", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 303
        assert (await site.local.get("/")).status_code == 303


async def test_off_for_the_demo_and_when_not_required(make_site: Callable[..., SiteRunner],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    async with make_site(demo=True) as site:
        await store_user(site)
        assert (await site.other.get("/")).status_code == 200
        assert (await site.other.get("/login")).headers["location"] == "/"
    assert AUTH_OFF_WARNING not in caplog.text
    with caplog.at_level(logging.WARNING):
        async with make_site(auth=AuthConfig(required=False)) as site:
            pair = csrf_pair()  # the CSRF check still holds with access control off
            site.other.cookies.update(pair["cookies"])
            answer = await site.other.put("/api/v1/printers/None/slots/0", json={"spool_id": 1},
                                          headers=pair["headers"])
            assert answer.status_code == 404
    assert AUTH_OFF_WARNING in caplog.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_after_sign_in_only_local_paths(site: Site, target: str) -> None:
    await store_user(site)
    token = await site.csrf(site.other, "/login")
    answer = await site.other.post("/login", data={"csrf_token": token, "name": "ann", "password": PASSWORD,
                                                   "next": target})
    assert answer.headers["location"] == "/"


async def test_bearer_grant_is_the_seam_for_other_checks(site: Site) -> None:
    """What the CSRF check can ask: the grant the middleware found, or (access control off) a fresh lookup."""
    reader = store.create_token(site.runtime.db, "home-assistant", read_only=True)

    def request(state: dict[str, object], token: str | None) -> Request[Any, Any, Any]:
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "litestar_app": site.app,
                        "state": state, "query_string": b""})  # type: ignore[typeddict-item]

    stashed = TokenGrant("from the middleware", read_only=False)
    assert bearer_grant(request({"auth_token": stashed}, None)) is stashed
    assert bearer_grant(request({}, reader)) == TokenGrant("home-assistant", read_only=True)
    assert bearer_grant(request({}, "lw_" + "x" * 43)) is None
    assert bearer_grant(request({}, None)) is None


async def test_the_start_says_when_no_password_exists(make_site: Callable[..., SiteRunner],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        async with make_site() as site:
            await store_user(site)
        assert NO_PASSWORD_WARNING in caplog.text
        caplog.clear()
        async with make_site():
            pass
        assert NO_PASSWORD_WARNING not in caplog.text and PASSWORD not in caplog.text
