"""The reader thread hands over every chunk, in order, even to a consumer that falls behind (issue 16:
a full queue must make the reader wait, never skip the chunk)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from server.analysis.streams import threaded


def test_a_slow_consumer_still_gets_every_chunk_in_order() -> None:
    chunks = [bytes([i]) * 10 for i in range(6)]
    got = []
    for chunk in threaded(iter(chunks), depth=1):
        got.append(chunk)
        if len(got) == 1:
            time.sleep(0.3)  # behind long enough for the reader's put to time out on the full queue
    assert got == chunks


def test_the_reader_runs_at_most_four_chunks_ahead_of_the_parser() -> None:
    """The queue bounds memory: while the parser holds one chunk, the reader has four queued and one more
    read and waiting, never further (chunks are 1 MiB by default)."""
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield bytes([i])

    chunks = threaded(source())
    assert next(chunks) == b"\x00"
    deadline = time.monotonic() + 60
    while pulled < 6 and time.monotonic() < deadline:  # waits for the reader, asserts nothing about time
        time.sleep(0.01)
    time.sleep(0.3)  # room for a reader that would go further
    assert pulled == 6
    chunks.close()
