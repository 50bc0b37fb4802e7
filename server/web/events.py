"""Server-sent events: live printer, slot and job changes for every open page.

A farm publishes a few hundred events a second, and each one written to each open page on its own
was the largest single cost on the event loop (a socket write per event per page, bench.farm). So
the events published within ``GATHER_SECONDS`` of the first go out together in one write, without
repeats (an event identical to one already in the write says nothing new: a page re-reads the
printer once either way).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

from litestar import get
from litestar.response import ServerSentEventMessage, Stream

from server.events import Event
from server.runtime import Runtime

HEARTBEAT_SECONDS = 15.0  # keeps proxies from closing an idle stream
GATHER_SECONDS = 0.1  # a burst of events waits this long at most to share a write; unnoticeable on a page
HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


# Events whose payload pages do not read go out with only these fields: a page reloads the printer's part
# on any of them. A forecast's trays (~700 bytes, a farm's printers several a minute each) were half the
# stream's bytes (bench.farm); notifications and Home Assistant take the whole payload from the bus.
BRIEF: dict[str, tuple[str, ...]] = {"forecast": ("job_id",)}

_encoded: dict[int, tuple[Event, bytes]] = {}  # by identity: one event is encoded once for every open page
ENCODED_KEPT = 1024  # events; far more than one burst, so every page finds the ones it is sending


def encode(event: Event) -> bytes:
    kept = _encoded.get(id(event))
    if kept is not None and kept[0] is event:
        return kept[1]
    fields = BRIEF.get(event.kind)
    data = event.data if fields is None else {key: event.data[key] for key in fields if key in event.data}
    payload = {"printer": event.printer, **data}
    encoded = ServerSentEventMessage(event=event.kind, data=json.dumps(payload, default=str)).encode()
    if len(_encoded) >= ENCODED_KEPT:
        del _encoded[next(iter(_encoded))]  # the oldest: dicts keep insertion order
    _encoded[id(event)] = (event, encoded)  # the event held, so its id is not reused while kept
    return encoded


def one_write(events: list[Event]) -> bytes:
    """The events in order, each once."""
    return b"".join(dict.fromkeys(encode(event) for event in events))


async def _chunks(runtime: Runtime) -> AsyncGenerator[bytes, None]:
    async with runtime.bus.subscribe() as queue:
        yield ServerSentEventMessage(event="hello", data="{}", retry=2000).encode()
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(comment="heartbeat").encode()
                continue
            await asyncio.sleep(GATHER_SECONDS)
            events = [first]
            while not queue.empty():
                events.append(queue.get_nowait())
            yield one_write(events)


@get("/events", include_in_schema=False)
async def stream(runtime: Runtime) -> Stream:
    return Stream(_chunks(runtime), media_type="text/event-stream", headers=HEADERS)
