"""The reader thread hands over every chunk, in order, even to a consumer that falls behind (issue 16:
a full queue must make the reader wait, never skip the chunk); closing early still reports damage it finds."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import server
from server.analysis import TruncatedArchive
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


def test_closing_early_still_reports_damage_the_reader_finds_after_the_close() -> None:
    """The parser stops after the first chunk while the reader is still inflating the next; the reader then
    finds the member cut short. Closing waits for the reader, so the damage is reported, not lost."""
    released = threading.Event()

    def source() -> Iterator[bytes]:
        yield b"first"
        released.wait(60)  # the reader is busy here when the parser closes
        raise TruncatedArchive("Metadata/plate_1.gcode is truncated or corrupt")

    chunks = threaded(source())
    assert next(chunks) == b"first"
    threading.Timer(0.3, released.set).start()  # only orders the damage after the close has begun
    with pytest.raises(TruncatedArchive, match="truncated"):
        chunks.close()


ABANDONED = """
import itertools
from server.analysis.streams import threaded
stream = threaded(itertools.repeat(b"x"))  # endless, as a big plate is to a parser that stopped
next(stream)
print("read", flush=True)
"""


def test_a_stream_left_unclosed_does_not_keep_the_process_from_exiting() -> None:
    """A parser stopped by an exception the caller never handles (Ctrl-C in the CLI) leaves the stream
    unclosed, held by the traceback: the reader, waiting on a full queue, must not hold the exit up."""
    root = str(Path(server.__file__).parents[1])
    try:
        done = subprocess.run([sys.executable, "-c", ABANDONED], capture_output=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": root}, cwd=root)
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit: the reader thread held it up")
    assert (done.returncode, done.stdout) == (0, b"read\n"), done.stderr
