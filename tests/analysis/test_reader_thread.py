"""The reader thread hands over every chunk, in order, even to a consumer that falls behind (issue 16:
a full queue must make the reader wait, never skip the chunk)."""

from __future__ import annotations

import time

from server.analysis.streams import threaded


def test_a_slow_consumer_still_gets_every_chunk_in_order() -> None:
    chunks = [bytes([i]) * 10 for i in range(6)]
    got = []
    for chunk in threaded(iter(chunks), depth=1):
        got.append(chunk)
        if len(got) == 1:
            time.sleep(0.3)  # behind long enough for the reader's put to time out on the full queue
    assert got == chunks
