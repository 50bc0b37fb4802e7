"""``/api/v1/schema``: a small page of our own that links the OpenAPI JSON, instead of a viewer that
loads its scripts from a CDN (the app must work on a LAN without the internet, and load nothing foreign)."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

from server import __version__
from server.web.pages import asset_url


class SchemaPage(OpenAPIRenderPlugin):
    """A plain page at the schema's root that links the JSON (Litestar's JsonRenderPlugin serves it)."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        paths = sorted(openapi_schema.get("paths", {}))
        rows = "".join(f"<li><code>{escape(p)}</code></li>" for p in paths)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="theme-color" content="#0e7c66" media="(prefers-color-scheme: light)">
<meta name="theme-color" content="#0b1412" media="(prefers-color-scheme: dark)">
<title>Layerwise API</title><link rel="stylesheet" href="{asset_url("/static/app.css")}"></head>
<body><main id="main"><h1>Layerwise API {escape(__version__)}</h1>
<p>The JSON API lives under <code>/api/v1</code>. Its OpenAPI description:
<a href="/api/v1/schema/openapi.json">openapi.json</a> (open it in any OpenAPI viewer).</p>
<ul>{rows}</ul><p><a href="/">Back to the printers</a></p></main></body></html>""".encode()
