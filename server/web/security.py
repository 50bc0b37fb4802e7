"""Headers on every answer, and failures that are the request's fault answered 400, not 500.

The Content-Security-Policy allows scripts from this origin only (no inline script, no eval: the pages
keep theirs in ``static/``); styles may be inline because the templates set colours and widths with
``style=`` attributes, which cannot run code. Nothing may frame the pages (clickjacking).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message, Scope

log = logging.getLogger("server.web")

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    # https: the set-up page probes Layerwise's own HTTPS port (another origin) with an image.
    "img-src 'self' data: blob: https:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(self), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}


async def add_security_headers(message: Message, _scope: Scope) -> None:
    """A ``before_send`` hook: every answer, including 404s, errors, static files and the event stream."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            if name not in headers:
                headers[name] = value


def _route(request: Request[Any, Any, Any]) -> str:
    # The route's template, not the path: no ids, names or query strings in the log line.
    return f"{request.method} {request.scope.get('path_template') or '(no route)'}"


def _answer(status: int, detail: str) -> Response[dict[str, Any]]:
    return Response({"status_code": status, "detail": detail}, status_code=status)


def number_out_of_range(request: Request[Any, Any, Any], _exc: OverflowError) -> Response[dict[str, Any]]:
    """A number too big for the database (``?offset=9223372036854775808``) is the request's fault."""
    log.info("%s: a number in the request is out of range (answered 400)", _route(request))
    return _answer(HTTP_400_BAD_REQUEST, "A number in the request is out of range.")


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[dict[str, Any]]:
    """A JSON body nested a thousand deep makes the decoder give up: the request's fault, when it had one."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return internal_error(request, exc)
    log.info("%s: the request body is nested too deeply (answered 400)", _route(request))
    return _answer(HTTP_400_BAD_REQUEST, "The request body is nested too deeply.")


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Any other failure: logged once, with the route and the traceback (server.logs redacts secrets)."""
    log.error("%s failed: %s", _route(request), type(exc).__name__, exc_info=exc)
    return _answer(HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error")


exception_handlers: dict[Any, Any] = {
    OverflowError: number_out_of_range,
    RecursionError: too_deep,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error,
}
