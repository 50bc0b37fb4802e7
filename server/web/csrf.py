"""CSRF protection for every state-changing request: a double-submit token plus Fetch Metadata, or a
bearer token a ``TokenVerifier`` accepts.

``csrf_guard`` is the app's guard, so it covers every route, pages and ``/api/v1`` alike, including
routes added later; GET, HEAD and OPTIONS pass (they change nothing). Before it covered the API, a page
on another site could POST ``text/plain`` (a "simple" request: no preflight) with a JSON body to
``/api/v1/.../rfid/remember``: Litestar decodes the body whatever its type.

The dashboard sets a random token in a cookie and renders the same token into
the page, which htmx sends back as a header. Another site can neither read the
cookie nor add a custom header without a CORS preflight, so a forged POST lacks
it. No server secret is involved, so tokens survive restarts (phones keep pages
open for days). ``Sec-Fetch-Site`` additionally rejects cross-site requests
(and same-site ones: a sibling subdomain could plant its own cookie).
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Protocol

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

COOKIE_NAME = "layerwise_csrf"
HEADER_NAME = "x-csrf-token"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_ALLOWED_FETCH_SITES = {"same-origin", "none"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VERIFIER_STATE = "token_verifier"  # the app's state key for the TokenVerifier, if any


class TokenVerifier(Protocol):
    """Says whether a bearer token (``Authorization: Bearer ...``) may change things.

    A script sends one instead of the CSRF cookie and header: a browser on another site cannot add an
    ``Authorization`` header without a CORS preflight, which this app never grants. With none set on
    the app (``create_app(token_verifier=...)``), every bearer token is refused.
    """

    async def verify(self, token: str) -> bool: ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" when empty); ``None`` for no or another scheme
    (``Basic`` from a reverse proxy that logs people in is not ours to judge)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def usable_token(cookie: str | None) -> str | None:
    return cookie if cookie and _TOKEN_SHAPE.fullmatch(cookie) else None


def csrf_problem(cookie: str | None, header: str | None, fetch_site: str | None) -> str | None:
    """Why a state-changing request must be refused, or ``None`` when it may go ahead."""
    if fetch_site is not None and fetch_site not in _ALLOWED_FETCH_SITES:
        return "request from another site"
    token = usable_token(cookie)
    if token is None:
        return "missing CSRF cookie: reload the page"
    if not header or not hmac.compare_digest(token.encode(), header.encode()):
        return "CSRF token mismatch: reload the page"
    return None


FORM_CHECKED = "csrf_in_form"  # a handler ``opt``: the handler checks the token of its own form field


async def csrf_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    token = bearer_token(connection.headers.get("authorization"))
    if token is not None:
        verifier: TokenVerifier | None = connection.app.state.get(VERIFIER_STATE)
        challenge = {"WWW-Authenticate": 'Bearer realm="layerwise"'}
        if verifier is None:
            raise NotAuthorizedException("bearer tokens are not accepted here: no API tokens are set up",
                                         headers=challenge)
        if not token or not await verifier.verify(token):
            raise NotAuthorizedException("bearer token refused", headers=challenge)
        return
    if handler.opt.get(FORM_CHECKED):
        return  # plain HTML forms (sign-in, first run, sign-out) cannot send a header; they check the field
    problem = csrf_problem(
        connection.cookies.get(COOKIE_NAME),
        connection.headers.get(HEADER_NAME),
        connection.headers.get("sec-fetch-site"),
    )
    if problem is not None:
        raise PermissionDeniedException(problem)


def token_cookie(token: str, *, secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value=token,
        max_age=400 * 24 * 3600,  # browsers cap cookie lifetime at 400 days
        path="/",
        httponly=True,  # the page carries the token; scripts never need the cookie
        samesite="lax",
        secure=secure,
    )
