""""Set up this phone": the plain-HTTP page a phone first opens, and the authority it downloads from there.

A phone on ``http://192.168.1.20:7913`` is not in a secure context: no camera, no installing the app.
While Layerwise serves its own HTTPS (server/https/), the HTTP server sends a browser's first page view
to ``/setup`` (``SetupRedirect``), which shows a QR code of the HTTPS address and how to trust Layerwise's
authority once per platform; its script (static/setup.js) probes the HTTPS origin and moves on to it as
soon as this device trusts it. Only the authority's certificate is ever handed out, never a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import segno
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template
from litestar.types import ASGIApp, Receive, Scope, Send

from server.https.service import LocalHttps
from server.web.pages import asset_url, is_demo

STATE_KEY = "local_https"
STAY_COOKIE = "layerwise_plain_http"  # "stay on plain HTTP": a desktop on the LAN that wants no set-up
# Paths the HTTP server serves as they are: the set-up page itself, files, the API, live events, the PWA's own.
PASS_THROUGH = ("/setup", "/static/", "/api/", "/events", "/healthz", "/manifest.webmanifest", "/sw.js",
                "/offline", "/favicon")
CA_DOWNLOADS = {
    "layerwise-ca.crt": "application/x-x509-ca-cert",  # DER: what Android's certificate installer takes
    "layerwise-ca.pem": "application/x-pem-file",
    "layerwise.mobileconfig": "application/x-apple-aspen-config",
}


def setup_redirect(method: str, path: str, query: str, headers: Mapping[str, str]) -> str | None:
    """Where the plain-HTTP server sends this request instead (``/setup?next=...``), or None to serve it.

    Only a page a person opens (GET, HTML): never htmx partials, the API, files, or a request a reverse
    proxy already received over HTTPS; never after the person chose to stay on plain HTTP."""
    if method not in ("GET", "HEAD") or path.startswith(PASS_THROUGH):
        return None
    if "text/html" not in headers.get("accept", "") or headers.get("hx-request"):
        return None
    if headers.get("x-forwarded-proto", "").lower() == "https":
        return None
    if _loopback(headers.get("host", "")):  # http://localhost is a secure context already: camera and install work
        return None
    if f"{STAY_COOKIE}=1" in headers.get("cookie", "").replace(" ", ""):
        return None
    target = path + (f"?{query}" if query else "")
    return "/setup" if target == "/" else f"/setup?next={quote(target, safe='')}"


def _loopback(host_header: str) -> bool:
    host = (urlsplit(f"//{host_header}").hostname or "").rstrip(".")
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


class SetupRedirect:
    """ASGI wrapper for the plain-HTTP server only: first page views go to the set-up page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            target = setup_redirect(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                                    headers)
            if target:
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", target.encode()), (b"cache-control", b"no-store"),
                                        (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


def _local(request: Request) -> LocalHttps:
    local = getattr(request.app.state, STATE_KEY, None)
    if local is None:
        raise NotFoundException("Layerwise does not serve HTTPS itself here")
    return local


def _host(request: Request) -> str:
    """The host part the browser used (no port), bracketed if IPv6."""
    host = urlsplit(f"//{request.headers.get('host', 'localhost')}").hostname or "localhost"
    return f"[{host}]" if ":" in host else host


def safe_next(value: str | None) -> str:
    """A same-site path to continue to after set-up; anything else (another site) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def qr_svg(text: str) -> str:
    return segno.make_qr(text, error="m").svg_inline(scale=5, dark="#000", light="#fff", border=4)


@get("/setup", include_in_schema=False)
async def setup_page(request: Request) -> Template:
    local = _local(request)
    local.learn(request.headers.get("host"))  # so the HTTPS certificate names what this phone typed
    https_origin = f"https://{_host(request)}:{local.port}"
    next_path = safe_next(parse_qs(request.url.query).get("next", [None])[0])
    context: dict[str, Any] = {
        "asset": asset_url,
        "demo": is_demo(request),
        "https_origin": https_origin,
        "https_url": https_origin + next_path,
        "next_path": next_path,
        "qr": qr_svg(https_origin + "/"),
        "fingerprint": local.authority_fingerprint(),
        "authority_name": local.authority_name(),
        "secure": request.url.scheme == "https",
        "stay_cookie": STAY_COOKIE,
    }
    return Template("setup.html", context=context, headers={"Cache-Control": "no-store"})


@get("/setup/{name:str}", include_in_schema=False, sync_to_thread=False)
def authority_download(request: Request, name: str) -> Response[bytes]:
    local = _local(request)
    if name not in CA_DOWNLOADS:
        raise NotFoundException(f"no {name} here")
    if name.endswith(".crt"):
        body = local.authority_der()
    elif name.endswith(".pem"):
        body = local.authority_pem()
    else:
        body = local.authority_profile()
    return Response(body, media_type=CA_DOWNLOADS[name],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


handlers = [setup_page, authority_download]
