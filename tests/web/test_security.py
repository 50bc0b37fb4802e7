"""The web app over real HTTP: every state-changing route (read from the app's route table, so a new one
cannot slip through) refuses a request without the CSRF token or an accepted bearer token; Host names are
checked; every answer carries the security headers; bad input is a 400, never a 500."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, get, post
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from server.config import AuthConfig, ServerConfig, Settings, SpoolmanConfig
from server.runtime import Runtime
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.web import csrf, security
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from tests.web.credentials import csrf_pair

GOOD_TOKEN = "lw_good-token-for-scripts"


class OneToken:
    """A stand-in for the API tokens to come: accepts one token."""

    async def verify(self, token: str) -> bool:
        return token == GOOD_TOKEN


@dataclass
class Web:
    app: Litestar
    url: str


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    # Access control off: these tests are about the CSRF check and its own token verifier.
    settings = Settings(server=ServerConfig(data_dir=tmp_path / "data", allowed_hosts=("layerwise.lan",)),
                        auth=AuthConfig(required=False))
    app = create_app(Runtime.build(settings), token_verifier=OneToken())
    async with EmbeddedServer(app, lifespan="on", name="layerwise") as server:
        yield Web(app, server.url)


def state_changing(app: Litestar) -> list[tuple[str, str]]:
    """(method, a concrete path) for every route and method that is not GET/HEAD/OPTIONS."""
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            path = re.sub(r"\{\w+:(\w+)\}", lambda m: "1" if m.group(1) == "int" else "nobody", route.path)
            found += [(method, path) for method in sorted(route.methods - csrf.SAFE_METHODS)]
    return found


FORM_CHECKED = {"/login", "/first-run", "/logout", "/language"}


async def test_every_state_changing_route_needs_a_token(web: Web) -> None:
    routes = state_changing(web.app)
    assert len(routes) >= 18 and ("POST", "/api/v1/printers/nobody/slots/1/rfid/remember") in routes
    pair = csrf_pair()
    forged = {"content-type": "text/plain", "sec-fetch-site": "cross-site", "origin": "http://127.0.0.2:8000"}
    async with httpx.AsyncClient(base_url=web.url) as browser, httpx.AsyncClient(base_url=web.url, **pair) as script:
        for method, path in routes:
            if path in FORM_CHECKED:
                continue  # the sign-in forms check their own field's token (tests/web/test_auth.py)
            where = f"{method} {path}"
            assert (await browser.request(method, path)).status_code == 403, where
            cross = await browser.request(method, path, content=b'{"spool_id": 1, "use": "tag"}', headers=forged)
            assert cross.status_code == 403, where
            # The right pair from another site (a sibling host could plant the cookie) is refused too.
            assert (await script.request(method, path, headers={"sec-fetch-site": "same-site"})).status_code == 403
            for bad in ("Bearer nope", "Bearer", "bearer " + GOOD_TOKEN[:-1]):
                refused = await browser.request(method, path, headers={"authorization": bad})
                assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), where
            # Past the guard: the handler answers (unknown printer or job, missing body...), never 401/403.
            passed = await browser.request(method, path, headers={"authorization": f"Bearer {GOOD_TOKEN}"})
            assert passed.status_code not in (401, 403), (where, passed.text)
            assert (await script.request(method, path)).status_code not in (401, 403), where


async def test_bearer_tokens_unknown_to_access_control_are_refused(tmp_path: Path) -> None:
    app = create_app(Runtime.build(Settings(server=ServerConfig(data_dir=tmp_path / "data"))))
    async with EmbeddedServer(app, lifespan="on", name="layerwise") as server, httpx.AsyncClient() as client:
        refused = await client.post(f"{server.url}/api/v1/attention/retry", json={},
                                    headers={"authorization": f"Bearer {GOOD_TOKEN}"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")


async def test_safe_methods_pass_without_a_token(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url) as browser:
        for path in ("/", "/api/v1/printers", "/jobs", "/attention", "/api/v1/attention"):
            assert (await browser.get(path)).status_code == 200, path
            assert (await browser.head(path)).status_code in (200, 405), path


async def test_hosts_outside_the_machines_names_get_400(web: Web) -> None:
    port = httpx.URL(web.url).port
    async with httpx.AsyncClient(base_url=web.url) as client:
        for good in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", "layerwise.lan"):
            assert (await client.get("/api/v1/printers", headers={"host": good})).status_code == 200, good
        for rebound in ("evil.example", f"evil.example:{port}", "layerwise.lan.evil.example", "8.8.8.8"):
            for path in ("/", "/api/v1/printers", "/static/app.js", "/events"):
                refused = await client.get(path, headers={"host": rebound})
                assert refused.status_code == 400, (rebound, path)
                assert "allowed_hosts" in refused.text and refused.headers["x-content-type-options"] == "nosniff"


def assert_secured(response: httpx.Response) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_security_headers_on_every_kind_of_answer(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url) as client:
        answers = [
            await client.get("/"), await client.get("/api/v1/printers"), await client.get("/static/app.js"),
            await client.get("/api/v1/schema"), await client.get("/sw.js"), await client.get("/nowhere"),
            await client.get("/api/v1/jobs/12345"), await client.post("/api/v1/attention/retry"),
            await client.get("/api/v1/jobs?offset=-1"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 404, 404, 403, 400]
        async with client.stream("GET", "/events") as stream:
            answers.append(stream)
    for answer in answers:
        assert_secured(answer)


async def test_numbers_out_of_range_and_deep_json_are_400(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.url, **csrf_pair()) as client:
        assert (await client.get("/api/v1/jobs?offset=9223372036854775808")).status_code == 400
        deep = "[" * 1000 + "]" * 1000
        for path in ("/api/v1/attention/retry", "/api/v1/corrections", "/api/v1/printers/nobody/slots/1/rfid/resolve"):
            answer = await client.post(path, content=deep, headers={"content-type": "application/json"})
            assert answer.status_code == 400 and "nested too deeply" in answer.text, path
        nested = '{"spool_id": ' * 1000 + "1" + "}" * 1000
        assert (await client.put("/api/v1/printers/nobody/slots/1", content=nested)).status_code == 400


async def test_a_500_is_logged_once_with_its_route_and_overflow_is_400(caplog: pytest.LogCaptureFixture) -> None:
    @get("/boom/{item:int}", sync_to_thread=False)
    def boom(item: int) -> None:
        raise RuntimeError("kaboom")

    @post("/big", sync_to_thread=False)
    def big(data: dict[str, int]) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    app = Litestar([boom, big], exception_handlers=security.exception_handlers,
                   before_send=[security.add_security_headers], logging_config=None)
    caplog.set_level(logging.INFO, logger="server.web")
    async with AsyncTestClient(app) as client:
        failed = await client.get("/boom/42?secret=hunter2")
        assert failed.status_code == 500 and json.loads(failed.text)["detail"] == "Internal Server Error"
        assert "kaboom" not in failed.text
        assert_secured(failed)  # type: ignore[arg-type]
        assert (await client.post("/big", json={"n": 1})).status_code == 400
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage() == "GET /boom/{item} failed: RuntimeError"
    # What the app logged: not the test client's own request lines (httpx logs its URL at INFO when an earlier
    # test left the root logger at INFO; Layerwise's own httpx logger is kept at WARNING, server/logs.py).
    app_side = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert app_side and not [line for line in app_side if "hunter2" in line]
    assert "42" not in errors[0].getMessage()


SPOOLMAN_KEY = "sp00lman-Proxy-Key-7f3a9c"


@pytest.mark.parametrize("configured", [SPOOLMAN_KEY, "a-wrong-key-1234"])
async def test_the_spoolman_key_is_sent_and_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       configured: str) -> None:
    caplog.set_level(logging.DEBUG)
    store = SpoolmanStore()
    seed_demo(store)
    async with SpoolmanStandin(store, api_key=SPOOLMAN_KEY) as spoolman:
        settings = Settings(server=ServerConfig(data_dir=tmp_path / "data"),
                            spoolman=SpoolmanConfig(url=spoolman.url, timeout=2, api_key=SecretStr(configured)))
        app = create_app(Runtime.build(settings))
        async with EmbeddedServer(app, lifespan="on", name="layerwise") as server, \
                httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            spools = await client.get("/api/v1/spools")
            assert spools.status_code == (200 if configured == SPOOLMAN_KEY else 503), spools.text
            if configured != SPOOLMAN_KEY:
                assert "api_key" in spools.json()["message"]
            answers = [spools] + [await client.get(path) for path in (
                "/", "/connect", "/jobs", "/attention", "/spools/1/ledger", "/api/v1/backlog",
                "/api/v1/schema/openapi.json", "/printers/nobody/slots/0/spools?q=pla")]
    for answer in answers:
        assert configured not in answer.text, answer.url
    assert configured not in caplog.text


async def test_a_login_proxys_basic_header_leaves_the_decision_to_the_csrf_check(web: Web) -> None:
    basic = {"authorization": "Basic dXNlcjpwdw=="}
    async with httpx.AsyncClient(base_url=web.url, **csrf_pair()) as script, \
            httpx.AsyncClient(base_url=web.url) as browser:
        assert (await browser.post("/api/v1/attention/retry", json={}, headers=basic)).status_code == 403
        assert (await script.post("/api/v1/attention/retry", json={}, headers=basic)).status_code not in (401, 403)
