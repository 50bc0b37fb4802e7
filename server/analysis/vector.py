"""Vectorised (numpy) indexing of a gcode buffer: the same events and segment sums as the regex
indexer in gcode.py, several times faster because no Python object is made per line or per value.

``index(buf, end)`` looks at complete lines in ``buf[:end+1]`` (``buf[0]`` and ``buf[end]`` are newlines)
and returns (events, sums, lasts, counts):
  * events: ``(start, line_end)`` of each event line, ``start`` being the newline before it;
  * for each of the ``len(events) + 1`` segments (before each event, then the tail): the sum of the E
    values of its plain ``G0``-``G3`` lines, the last E value (for absolute mode) and how many there were.
Numbers are parsed exactly: digits as an integer divided by a power of ten, which IEEE division rounds
to the same double as ``float(text)``; anything unusual (long or malformed numbers) goes through
``float`` itself.
"""

from __future__ import annotations

import re

import numpy as np

NL, SEMI, E = 10, 59, 69
WIDTH = 12  # characters of an E value handled vectorised; longer ones take the float() path
_TOKEN = re.compile(rb"[-+.0-9]*")
PADDING = b"\n" * 32  # the same padding the scanner (gcode.py) leaves after each buffer
_POW10 = np.array([10.0**k for k in range(WIDTH + 1)])


def _prefix(text: bytes) -> tuple[int, int]:
    return (1 << (8 * len(text))) - 1, int.from_bytes(text, "little")


# Line prefixes that make a line other than a G line an event: with G92 and G00-G03, which `_events`
# finds among the G lines, the same set as gcode._EVENT.
_EVENT_PREFIXES = [
    _prefix(p)
    for p in (
        b"M73 L",
        b"M73 P",
        b"M620.11",
        b"M628",
        b"M629",
        b"M82",
        b"M83",
        b";V",
        b"; total",
        b"; model",
    )
]
_FILAMENT_LO = _prefix(b"; filame")
_FILAMENT_HI = _prefix(b"nt")


def _float(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _table(chars: bytes, value: int = 1, dtype: type = np.uint8) -> np.ndarray:
    table = np.zeros(256, dtype=dtype)
    for ch in chars:
        table[ch] = value
    return table


_ALLOWED = _table(b"0123456789.")  # a token character after the optional leading sign
_DIGIT = _table(b"0123456789")
_DOT = _table(b".")
_DIGIT_VALUE = np.array([i - 48 if 48 <= i <= 57 else 0 for i in range(256)], dtype=np.float64)
_SCALE = np.where(_DIGIT.astype(bool), 10.0, 1.0)
_SIGN = _table(b"+-")


def _indented_events(a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Which indented lines are events: the first non-blank character is not a comment (``;V`` is)."""
    pos = starts + 1
    while True:
        c = a[pos]
        blank = (c == 32) | (c == 9)
        if not blank.any():
            break
        pos = pos + blank
    return ~((c == 59) | (c == 13) | (c == 10)) | ((c == 59) & (a[pos + 1] == 86))


def _events(lo: np.ndarray, starts: np.ndarray, words: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Line indices of event lines. Most lines are G moves: only G92/G00-G03 are events among them,
    so the other prefixes are checked on the non-G lines only."""
    c0 = lo & np.uint64(0xFF)
    g_lines = c0 == 71
    hit = g_lines & (
        ((lo & np.uint64(0xFFFFFF)) == np.uint64(int.from_bytes(b"G92", "little")))
        | ((lo & np.uint64(0xFCFFFF)) == np.uint64(int.from_bytes(b"G00", "little")))
    )
    others = np.flatnonzero(~g_lines)
    sub = lo[others]
    s0 = sub & np.uint64(0xFF)
    s1 = (sub >> np.uint64(8)) & np.uint64(0xFF)
    digit1 = (s1 - np.uint64(48)) < np.uint64(10)  # unsigned: wraps for s1 < 48
    found = ((s0 == 84) | (s0 == 78)) & digit1  # T<d>, N<d>
    for mask, value in _EVENT_PREFIXES:
        found |= (sub & np.uint64(mask)) == np.uint64(value)
    maybe = others[(sub & np.uint64(_FILAMENT_LO[0])) == np.uint64(_FILAMENT_LO[1])]
    if len(maybe):
        tail = words[starts[maybe] + 8] & np.uint64(_FILAMENT_HI[0])
        hit[maybe[tail == np.uint64(_FILAMENT_HI[1])]] = True
    hit[others[found]] = True
    indented = others[(s0 == 32) | (s0 == 9)]
    if len(indented):
        hit[indented[_indented_events(a, starts[indented])]] = True
    return np.flatnonzero(hit)


def _values(a: np.ndarray, buf: bytes, ep: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse the number after each E at ``ep``, one character column at a time over all of them
    (in-place array operations, no Python per value); return (positions kept, values)."""
    n = len(ep)
    first = a[ep + 1]
    pos = ep + 1 + _SIGN[first]  # first character after an optional sign
    acc = np.zeros(n)  # the digits as an integer, exact in a double below 2**53
    scratch = np.empty(n)
    whole = np.zeros(n, dtype=np.uint8)  # digits before the dot
    dots = np.zeros(n, dtype=np.uint8)
    digits = np.zeros(n, dtype=np.uint8)
    live = np.ones(n, dtype=bool)  # still inside the token
    d = np.empty(n, dtype=bool)
    dot = np.empty(n, dtype=bool)
    c = np.empty(n, dtype=np.uint8)
    value = np.empty(n, dtype=np.uint8)
    for col in range(WIDTH):
        if col > 3 and not live.any():  # every token has ended (most are 3-7 characters)
            break
        np.take(a, pos, out=c)
        pos += 1
        np.subtract(c, 48, out=value)  # wraps around for characters below '0'
        np.less(value, 10, out=d)
        np.equal(c, 46, out=dot)
        live &= d | dot
        d &= live
        dot &= live
        dots += dot
        np.copyto(whole, digits, where=dot)
        np.multiply(acc, 10, out=scratch)
        scratch += value
        np.copyto(acc, scratch, where=d)
        digits += d
    length = digits.astype(np.intp) + dots
    stop = a[ep + 1 + _SIGN[first] + np.minimum(length, WIDTH)]
    # float() rejects a second dot or a sign inside; longer tokens are left to it as well.
    odd = (dots > 1) | _SIGN[stop].view(bool) | live | (length >= WIDTH)
    plain = (digits > 0) & ~odd
    frac = np.where(dots > 0, digits - whole, 0)
    values = acc / _POW10[np.minimum(frac, WIDTH)]
    np.negative(values, out=values, where=first == 45)
    keep = plain
    for i in np.flatnonzero(odd).tolist():  # as the regex path: float() decides, or the value is ignored
        token = _TOKEN.match(buf, int(ep[i]) + 1, end).group()  # type: ignore[union-attr]
        number = _float(token) if token else None
        if number is not None:
            values[i] = number
            keep[i] = True
    return ep[keep], values[keep]


def count_newlines(buf: bytes, lo: int, hi: int) -> int:
    """``buf.count(b"\\n", lo, hi)``, several times faster (kept per chunk for line numbers in messages)."""
    return int(np.count_nonzero(np.frombuffer(buf, dtype=np.uint8, count=hi - lo, offset=lo) == NL)) if hi > lo else 0


def index(buf: bytes, end: int) -> tuple[list[tuple[int, int]], list[float], list[float | None], list[int]]:
    if len(buf) < end + 1 + len(PADDING):  # callers normally leave the padding in place
        buf = buf[: end + 1] + PADDING
    a = np.frombuffer(buf, dtype=np.uint8)
    # Every byte offset read as a little-endian uint64 (unaligned, strided view, no copy).
    words = np.ndarray(shape=(end + 17,), dtype="<u8", buffer=buf, strides=(1,))
    # One pass for the three characters that matter: newlines, E, and ';' (a comment before the E).
    view = a[: end + 1]
    mask = view == NL
    mask |= view == E
    mask |= view == SEMI
    pos = np.flatnonzero(mask)
    kind = a[pos]
    is_nl = kind == NL
    nl_at = np.flatnonzero(is_nl)  # indices into pos of the newlines
    nl = pos[nl_at]
    starts = nl[:-1] + 1  # line k spans starts[k] .. nl[k + 1]
    lo = words[starts]
    event_lines = _events(lo, starts, words, a)
    is_move = ((lo & np.uint64(0xFFF0FF)) == np.uint64(0x203047)) | ((lo & np.uint64(0xFFF0FF)) == np.uint64(0x093047))
    is_move &= ((lo >> np.uint64(8)) & np.uint64(0xFF)) <= np.uint64(ord("3"))

    line_of = np.cumsum(is_nl, dtype=np.int32) - 1  # line of each entry of pos (buf starts with \n)
    e_at = np.flatnonzero(kind == E)
    line = line_of[e_at]
    ok = is_move[line]
    e_at, line = e_at[ok], line[ok]
    if len(e_at):
        first = np.empty(len(e_at), dtype=bool)
        first[0] = True
        np.not_equal(line[1:], line[:-1], out=first[1:])
        e_at, line = e_at[first], line[first]
        semis = np.cumsum(kind == SEMI, dtype=np.int32)
        commented = semis[e_at] != semis[nl_at[line]]  # a ';' between the line start and the E
        e_at = e_at[~commented]
    ep = pos[e_at]
    vpos, values = _values(a, buf, ep, end) if len(ep) else (ep, np.zeros(0))

    event_starts = starts[event_lines] - 1
    events = list(zip(event_starts.tolist(), nl[event_lines + 1].tolist(), strict=True))
    nseg = len(events) + 1
    segment = np.searchsorted(event_starts, vpos)
    bounds = np.searchsorted(segment, np.arange(nseg + 1))
    counts = np.diff(bounds)
    sums = np.zeros(nseg)
    lasts: list[float | None] = [None] * nseg
    nonempty = np.flatnonzero(counts)
    if len(nonempty):
        sums[nonempty] = np.add.reduceat(values, bounds[nonempty])
        for k, v in zip(nonempty.tolist(), values[bounds[nonempty + 1] - 1].tolist(), strict=True):
            lasts[k] = v
    return events, sums.tolist(), lasts, counts.tolist()
