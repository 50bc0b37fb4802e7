"""``GET /metrics``: the Prometheus text format, from the runtime's own registry (server/metrics.py).

Behind access control like the API (a session or a bearer token, read-only tokens included)."""

from __future__ import annotations

import asyncio

from litestar import Response, get

from server.metrics import CONTENT_TYPE
from server.runtime import Runtime


@get("/metrics", include_in_schema=False)
async def metrics(runtime: Runtime) -> Response[bytes]:
    # In a thread: the figures computed at scrape read SQLite.
    body = await asyncio.to_thread(runtime.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


handlers = [metrics]
