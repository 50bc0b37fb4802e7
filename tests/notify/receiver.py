"""A real HTTP server on 127.0.0.1 port 0 for Apprise's ``json://`` target: what a phone would be told."""

from __future__ import annotations

import asyncio
import json
import queue
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A real HTTP server on 127.0.0.1 port 0 that answers ``failures`` times 500, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.failures = failures
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                failing = receiver.requests <= receiver.failures
                if not failing:
                    receiver.bodies.put(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/notify"

    async def next(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.bodies.get, timeout=30)
