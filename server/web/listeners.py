"""Run the web app on plain HTTP and, beside it, on Layerwise's own HTTPS: two uvicorn servers, one loop, one app.

The HTTP server owns the app's lifespan (the runtime starts once) and the signals; the HTTPS server starts
after the app is up and stops with it. Only the HTTP server sends first page views to the set-up page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from litestar import Litestar

from server.https.service import LocalHttps
from server.web.phone_setup import STATE_KEY, SetupRedirect

log = logging.getLogger(__name__)


class _Quiet(uvicorn.Server):
    """The HTTPS server: the HTTP server takes SIGINT/SIGTERM and tells this one to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _report_https_end(task: asyncio.Task[None]) -> None:
    """The HTTPS side failed on its own: say so; plain HTTP goes on serving."""
    if not task.cancelled() and task.exception() is not None:
        log.error("HTTPS for phones stopped: %s", task.exception())


async def _serve_both(http: uvicorn.Server, http_sock: socket.socket, https: uvicorn.Server,
                      https_sock: socket.socket, local: LocalHttps) -> None:
    main = asyncio.create_task(http.serve(sockets=[http_sock]))
    while not http.started and not main.done():
        await asyncio.sleep(0.05)
    if main.done():  # the app did not start (its lifespan failed): nothing to serve over HTTPS either
        await main
        return
    https.config.load()
    local.context = https.config.ssl  # renewed certificates go into the running server
    second = asyncio.create_task(https.serve(sockets=[https_sock]))
    fresh = asyncio.create_task(local.keep_fresh())
    second.add_done_callback(_report_https_end)
    try:
        while not main.done():
            await asyncio.sleep(0.1)
            if http.should_exit:
                https.should_exit = True
    finally:
        https.should_exit = True
        fresh.cancel()
        await asyncio.gather(second, fresh, return_exceptions=True)
    await main


def serve(app: Litestar, http_sock: socket.socket, tls: tuple[str, str] | None = None,
          local: tuple[LocalHttps, socket.socket] | None = None) -> None:
    """``tls``: the user's own certificate and key (the one port speaks HTTPS). ``local``: Layerwise's own
    HTTPS on a second socket, beside plain HTTP."""
    common = {"log_config": None, "access_log": False}
    if local is None:
        certfile, keyfile = tls or (None, None)
        uvicorn.Server(uvicorn.Config(app, ssl_certfile=certfile, ssl_keyfile=keyfile, **common)).run(
            sockets=[http_sock])
        return
    service, https_sock = local
    setattr(app.state, STATE_KEY, service)
    http = uvicorn.Server(uvicorn.Config(SetupRedirect(app), **common))
    https = _Quiet(uvicorn.Config(app, lifespan="off", ssl_certfile=str(service.files.cert),
                                  ssl_keyfile=str(service.files.key), **common))
    asyncio.run(_serve_both(http, http_sock, https, https_sock, service))
