"""Access control on the web side: the middleware that asks the gate about every request, and the
sign-in, first-run and sign-out pages (plain HTML forms carrying the CSRF token: no script needed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.middleware.base import DefineMiddleware
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import credentials, passwords
from server.auth.decisions import Access, TokenGrant, is_public
from server.auth.gate import Gate
from server.auth.store import SESSION_LIFETIME
from server.web import csrf
from server.web.i18n import N_, Translator, gettext_for
from server.web.pages import _context

FORM_FIELD = "csrf_token"  # the login forms' copy of the CSRF token (a form cannot send a header)
# The CSRF check's and server/auth's reasons are English (the CLI, the log, the API); the forms say them so.
_PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "request from another site": (N_("request from another site"), {}),
    "missing CSRF cookie: reload the page": (N_("missing CSRF cookie: reload the page"), {}),
    "CSRF token mismatch: reload the page": (N_("CSRF token mismatch: reload the page"), {}),
    f"the password must have at least {passwords.MIN_LENGTH} characters": (
        N_("the password must have at least %(n)s characters"), {"n": passwords.MIN_LENGTH}),
    f"the password must have at most {passwords.MAX_LENGTH} characters": (
        N_("the password must have at most %(n)s characters"), {"n": passwords.MAX_LENGTH}),
    "the two passwords differ": (N_("the two passwords differ"), {}),
    "the name must have 1 to 64 characters": (N_("the name must have 1 to 64 characters"), {}),
    "the name must be printable, without leading or trailing spaces": (
        N_("the name must be printable, without leading or trailing spaces"), {}),
}


def problem_words(problem: str, _: Translator) -> str:
    """A refusal's reason in the page's language (an unknown one as it is)."""
    message, values = _PROBLEMS.get(problem, (None, {}))
    return problem if message is None else _(message, **values)
_REFUSALS = {
    Access.LOGIN: "sign in first, or send an API token as Authorization: Bearer",
    Access.FIRST_RUN: "no password exists yet: create one at /first-run",
    Access.READ_ONLY: "this API token may only read",
}


def gate_of(request: Request) -> Gate:
    return request.app.state.auth  # type: ignore[no-any-return]


def session_cookie(value: str, *, secure: bool) -> Cookie:
    return Cookie(key=credentials.SESSION_COOKIE, value=value, max_age=int(SESSION_LIFETIME.total_seconds()),
                  path="/", httponly=True, samesite="strict", secure=secure)


def _gone_cookie(*, secure: bool) -> Cookie:
    return Cookie(key=credentials.SESSION_COOKIE, value="", max_age=0, path="/", httponly=True,
                  samesite="strict", secure=secure)


def _is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//other.site`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _wants_page(scope: Scope, headers: dict[str, str]) -> bool:
    """A person's browser navigating (answered with a redirect), not a script, htmx or a form POST."""
    return (scope.get("method") in ("GET", "HEAD") and not scope["path"].startswith(("/api/", "/events", "/metrics"))
            and "hx-request" not in headers and "authorization" not in headers)


class AuthMiddleware:
    """Refuses what the gate refuses; for the rest, tells the handlers who is signed in and slides the
    session cookie's expiry."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.gate.enabled or is_public(scope["path"]):
            await self.app(scope, receive, send)  # no thread hop for static files
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        verdict = await asyncio.to_thread(
            self.gate.judge, path=scope["path"], method=scope["method"], client=client[0] if client else None,
            forwarded="forwarded" in headers or "x-forwarded-for" in headers,
            authorization=headers.get("authorization"), session_cookie=_cookie(headers, credentials.SESSION_COOKIE))
        if verdict.access is not Access.ALLOW:
            await _refuse(scope, headers, verdict.access, send)
            return
        state = scope.setdefault("state", {})
        state["auth_user"] = verdict.user
        state["auth_token"] = verdict.token
        if verdict.refreshed_session is None:
            await self.app(scope, receive, send)
            return
        cookie = session_cookie(verdict.refreshed_session, secure=_is_https(scope)).to_encoded_header()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), cookie]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _refuse(scope: Scope, headers: dict[str, str], access: Access, send: Send) -> None:
    if access is not Access.READ_ONLY and _wants_page(scope, headers):
        target = "/first-run" if access is Access.FIRST_RUN else "/login"
        path = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
        await _send(send, 303, b"", [(b"location", f"{target}?next={quote(path, safe='')}".encode())])
        return
    status = 403 if access is Access.READ_ONLY else 401
    body = json.dumps({"status_code": status, "detail": _REFUSALS[access]}).encode()
    extra = [] if status == 403 else [(b"www-authenticate", b'Bearer realm="layerwise"')]
    if "hx-request" in headers and status == 401:  # htmx follows this with a full page load
        extra.append((b"hx-redirect", b"/first-run" if access is Access.FIRST_RUN else b"/login"))
    await _send(send, status, body, [(b"content-type", b"application/json"), *extra])


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def middleware(gate: Gate) -> DefineMiddleware:
    return DefineMiddleware(AuthMiddleware, gate=gate)


def bearer_grant(connection: ASGIConnection) -> TokenGrant | None:
    """The valid API token this request carries (``Authorization: Bearer``), or ``None``: the seam for checks
    that let a script's token stand in for a browser's proof, such as the CSRF check. The middleware has
    already verified it when access control is on; otherwise it is looked up here."""
    state = connection.scope.get("state", {})
    if "auth_token" in state:
        return state["auth_token"]  # type: ignore[no-any-return]
    token = credentials.bearer_token(connection.headers.get("authorization"))
    return connection.app.state.auth.verify_bearer(token) if token else None


# ----- pages -------------------------------------------------------------------------------------

def _form_page(request: Request, template: str, *, status: int = 200, headers: dict[str, str] | None = None,
               **values: Any) -> Template:
    token = csrf.usable_token(request.cookies.get(csrf.COOKIE_NAME)) or csrf.new_token()
    target = safe_next(values.pop("next", None) or request.query_params.get("next"))
    return Template(template, context=_context(request, form_token=token, next=target, **values),
                    status_code=status, cookies=[csrf.token_cookie(token, secure=request.url.scheme == "https")],
                    headers={"Cache-Control": "no-store", **(headers or {})})


async def _form(request: Request) -> tuple[dict[str, str], str | None]:
    """The form's fields, and why it must be refused (the CSRF check), or ``None``."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    problem = csrf.csrf_problem(request.cookies.get(csrf.COOKIE_NAME), form.get(FORM_FIELD),
                                request.headers.get("sec-fetch-site"))
    return form, problem


def _signed_in(request: Request, session_id: str, target: str) -> Redirect:
    return Redirect(safe_next(target), status_code=303,
                    cookies=[session_cookie(session_id, secure=request.url.scheme == "https")])


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@get("/login", include_in_schema=False)
async def login_page(request: Request) -> Template | Redirect:
    gate = gate_of(request)
    if not gate.enabled:
        return Redirect("/", status_code=303)
    if not await asyncio.to_thread(gate.has_users):
        return Redirect(f"/first-run?next={quote(safe_next(request.query_params.get('next')), safe='')}",
                        status_code=303)
    return _form_page(request, "login.html", name="")


@post("/login", include_in_schema=False, status_code=303, opt={csrf.FORM_CHECKED: True})
async def login(request: Request) -> Template | Redirect:
    _ = gettext_for(request)
    gate = gate_of(request)
    form, problem = await _form(request)
    name = form.get("name", "").strip()
    if problem is not None:
        return _form_page(request, "login.html", status=403, name=name, next=form.get("next"),
                          error=_("Not signed in: %(problem)s.", problem=problem_words(problem, _)))
    result = await asyncio.to_thread(gate.sign_in, _client(request), name, form.get("password", ""))
    if result.retry_after is not None:
        minutes = -(-result.retry_after // 60)
        wait = _("1 minute") if minutes == 1 else _("%(n)s minutes", n=minutes)
        return _form_page(request, "login.html", status=429, headers={"Retry-After": str(result.retry_after)},
                          name=name, next=form.get("next"), error=_("Too many failed attempts. Try again in %(wait)s.",
                                                                    wait=wait))
    if result.session_id is None:
        return _form_page(request, "login.html", status=401, name=name, next=form.get("next"),
                          error=_("Wrong name or password."))
    return _signed_in(request, result.session_id, form.get("next", "/"))


@get("/first-run", include_in_schema=False)
async def first_run_page(request: Request) -> Template | Redirect:
    gate = gate_of(request)
    if not gate.enabled:
        return Redirect("/", status_code=303)
    if await asyncio.to_thread(gate.has_users):
        return Redirect("/login", status_code=303)
    return _form_page(request, "first_run.html", name="admin", min_length=passwords.MIN_LENGTH)


@post("/first-run", include_in_schema=False, status_code=303, opt={csrf.FORM_CHECKED: True})
async def first_run(request: Request) -> Template | Redirect:
    _ = gettext_for(request)
    gate = gate_of(request)
    form, problem = await _form(request)
    name = form.get("name", "").strip()
    if not gate.enabled or await asyncio.to_thread(gate.has_users):
        return Redirect("/login", status_code=303)
    password = form.get("password", "")
    problem = problem or passwords.name_problem(name) or passwords.password_problem(password, form.get("again", ""))
    if problem is not None:
        return _form_page(request, "first_run.html", status=400, name=name, min_length=passwords.MIN_LENGTH,
                          next=form.get("next"),
                          error=_("Not saved: %(problem)s.", problem=problem_words(problem, _)))
    session_id = await asyncio.to_thread(gate.first_user, name, password)
    if session_id is None:  # someone else was quicker
        return Redirect("/login", status_code=303)
    return _signed_in(request, session_id, form.get("next", "/"))


@post("/logout", include_in_schema=False, status_code=303, opt={csrf.FORM_CHECKED: True})
async def logout(request: Request) -> Redirect:
    _, problem = await _form(request)
    secure = request.url.scheme == "https"
    if problem is None:
        await asyncio.to_thread(gate_of(request).sign_out, request.cookies.get(credentials.SESSION_COOKIE))
        return Redirect("/login", status_code=303, cookies=[_gone_cookie(secure=secure)])
    return Redirect("/", status_code=303)


handlers = [login_page, login, first_run_page, first_run, logout]
