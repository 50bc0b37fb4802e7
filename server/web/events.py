"""Server-sent events: live printer, slot and job changes for every open page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

from litestar import get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from server.runtime import Runtime

HEARTBEAT_SECONDS = 15.0  # keeps proxies from closing an idle stream


async def _messages(runtime: Runtime) -> AsyncGenerator[ServerSentEventMessage, None]:
    async with runtime.bus.subscribe() as queue:
        yield ServerSentEventMessage(event="hello", data="{}", retry=2000)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(comment="heartbeat")
                continue
            payload = {"printer": event.printer, **event.data}
            yield ServerSentEventMessage(event=event.kind, data=json.dumps(payload, default=str))


@get("/events", include_in_schema=False)
async def stream(runtime: Runtime) -> ServerSentEvent:
    return ServerSentEvent(_messages(runtime))
