"""CSRF protection for the pages' POSTs: a double-submit token plus Fetch Metadata.

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

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

COOKIE_NAME = "layerwise_csrf"
HEADER_NAME = "x-csrf-token"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_ALLOWED_FETCH_SITES = {"same-origin", "none"}


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


def csrf_guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
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
