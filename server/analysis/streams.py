"""The plate's gcode as a stream: inflated in a reader thread while the caller parses, its first bytes kept
for the slicer's name, and read a second time to number the line of an error (a one-shot analysis does
not count lines while it scans)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from server.analysis.errors import AnalysisError, BadGcode


def threaded(chunks: Iterator[bytes], depth: int = 4) -> Iterator[bytes]:
    """Run inflate + CRC + MD5 (all release the GIL) in a thread while the caller parses: the queue holds at
    most ``depth`` chunks, so memory stays bounded; errors surface in the caller."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(("data", chunk), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as err:  # forwarded to the consumer, re-raised there
            q.put(("error", err))

    worker = threading.Thread(target=produce, name="gcode-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "data":
                yield item  # type: ignore[misc]
            elif kind == "error":
                raise item  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
        pending: object = None
        while worker.is_alive() or not q.empty():
            try:
                kind, item = q.get_nowait()
            except queue.Empty:
                worker.join(0.05)
                continue
            if kind == "error":
                pending = item
        if isinstance(pending, AnalysisError):  # closed early, but the file was damaged: say so
            raise pending


class FirstBytes:
    """Keeps the first few KB of a stream (the slicer name line) while passing chunks through."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.first = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if len(self.first) < 4096:
                self.first += chunk[: 4096 - len(self.first)]
            yield chunk


def line_number(err: BadGcode, again: Callable[[], Iterator[bytes]]) -> BadGcode:
    """``err`` naming its line by number, counted in a second read of the gcode up to the line (the scan
    did not count lines: only a message needs them). Unnumbered if that read fails."""
    if err.offset is None or err.line is not None:
        return err
    seen = newlines = 0
    try:
        chunks = again()
        try:
            for chunk in chunks:
                take = min(len(chunk), err.offset - seen)
                newlines += chunk.count(b"\n", 0, take)
                seen += take
                if seen >= err.offset:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    except AnalysisError:
        return err
    return err.numbered(newlines + 1)
