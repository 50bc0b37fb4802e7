"""A small, strict, read-only zip reader for .gcode.3mf files, in place of the standard library's zipfile.

Why not zipfile: its import loads pathlib (with urllib.parse and ipaddress), shutil, bz2, lzma,
importlib.util and contextlib, ~8 ms of a ~90 ms ``layerwise analyze`` (docs/benchmarks.md, issue 11).
This reads only what a .gcode.3mf needs: the end record (with a comment, and ZIP64), data prepended to
the archive (zipfile's "concat"), the central directory, stored and deflate members. It is stricter than
zipfile: duplicate names, overlapping members, a local header that disagrees with the directory, sizes
that lie in either direction, entry counts that do not match are refused. Every refusal is a ``ZipError``
(``Encrypted`` for a password-protected member, ``Overlapping`` for entries sharing a name or data), which
archive.py maps to the analysis's own errors.
``tests/analysis/test_zipreader.py`` reads random and damaged archives with both this and zipfile (the
oracle): this returns zipfile's content exactly or refuses.

Imports only struct and zlib (both built in); members are read from one file object by seeking before
each read, so interleaved member streams work; not thread-safe (the analysis reads from one thread).
"""

from __future__ import annotations

import struct
import zlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (records.py says why)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

END = b"PK\x05\x06"
END64 = b"PK\x06\x06"
END64_LOCATOR = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
_END = struct.Struct("<4s4H2LH")  # 22 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, no extensible data (as zipfile assumes)
_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # 30 bytes
_MAX_COMMENT = 0xFFFF
_U32 = 0xFFFFFFFF
_MAX_EXTRACT_VERSION = 63  # zipfile's: a newer one needs features neither reader has
STORED, DEFLATED = 0, 8
FLAG_ENCRYPTED = 0x1
FLAG_PATCHED = 0x20
FLAG_STRONG_ENCRYPTION = 0x40
FLAG_UTF8 = 0x800
_READ = 1 << 16  # compressed bytes per read: under glibc's mmap threshold, so buffers are reused



def _name(raw: bytes, flags: int) -> str:
    """A member name as zipfile decodes it: UTF-8 when flagged, else cp437, which reads ASCII as ASCII
    (the usual name: decoded without importing the cp437 codec)."""
    if flags & FLAG_UTF8:
        return raw.decode("utf-8")
    return raw.decode("ascii") if raw.isascii() else raw.decode("cp437")

class ZipError(Exception):
    """The archive is damaged or uses something this reader does not support."""


class Encrypted(ZipError):
    """A member is password protected."""


class Overlapping(ZipError):
    """Entries that share a name or share data: a crafted archive (one block inflated by many entries is a
    known zip bomb), not a damaged one."""


class EndRecord:
    """What the end of the archive says about the central directory (ZIP64 values where present)."""

    __slots__ = ("comment", "count", "offset", "position", "size")

    def __init__(self, count: int, size: int, offset: int, position: int, comment: bytes) -> None:
        self.count = count  # entries
        self.size = size  # bytes of the central directory
        self.offset = offset  # where it starts, as written (before adding prepended data)
        self.position = position  # where the directory must end: the ZIP64 end record or the end record
        self.comment = comment


class Member:
    """One central directory entry (the attribute names are zipfile's ZipInfo's)."""

    __slots__ = (
        "CRC",
        "_limit",
        "_name_length",
        "compress_size",
        "compress_type",
        "file_size",
        "filename",
        "flag_bits",
        "header_offset",
    )

    def __init__(self, filename: str, flag_bits: int, compress_type: int, crc: int, compress_size: int,
                 file_size: int, header_offset: int, name_length: int = 0) -> None:
        self.filename = filename
        self.flag_bits = flag_bits
        self.compress_type = compress_type
        self.CRC = crc
        self.compress_size = compress_size
        self.file_size = file_size
        self.header_offset = header_offset
        self._name_length = name_length
        self._limit = 0  # where the next member (or the directory) starts: this one's data must end by then

    def __repr__(self) -> str:
        return f"<Member {self.filename!r} method={self.compress_type} size={self.file_size}>"


def _read_exactly(fh: BinaryIO, size: int, what: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise ZipError(f"{what} is cut short (file truncated)")
    return data


def find_end(fh: BinaryIO) -> EndRecord | None:
    """The end record, searched in the last 64 KiB + 22 bytes as zipfile does; None if there is none."""
    fh.seek(0, 2)
    file_size = fh.tell()
    if file_size < _END.size:
        return None
    # Most archives have no comment: the record is then the last 22 bytes (zipfile's first try too).
    fh.seek(file_size - _END.size)
    tail, start, found = fh.read(_END.size), file_size - _END.size, -1
    if tail[:4] == END and tail[-2:] == b"\0\0":
        found = 0
    else:
        start = max(file_size - _MAX_COMMENT - _END.size, 0)
        fh.seek(start)
        tail = fh.read()
        # The record whose comment reaches exactly the end of the file; failing that, the last one (zipfile's
        # choice, which tolerates bytes appended after the archive).
        at = len(tail)
        while (at := tail.rfind(END, 0, at)) >= 0:
            if len(tail) - at < _END.size:
                continue
            if found < 0:
                found = at
            if at + _END.size + _END.unpack_from(tail, at)[-1] == len(tail):
                found = at
                break
    if found < 0:
        return None
    _, disk, disk_dir, count_here, count, size, offset, comment_length = _END.unpack_from(tail, found)
    position = start + found
    comment = tail[found + _END.size : found + _END.size + comment_length]
    if position >= _LOCATOR.size:
        locator = tail[found - _LOCATOR.size : found] if found >= _LOCATOR.size else b""
        if len(locator) != _LOCATOR.size:
            fh.seek(position - _LOCATOR.size)
            locator = fh.read(_LOCATOR.size)
        signature, locator_disk, _, disks = _LOCATOR.unpack(locator)
        if signature == END64_LOCATOR:
            if locator_disk != 0 or disks > 1:
                raise ZipError("archives that span several disks are not supported")
            if position < _LOCATOR.size + _END64.size:
                raise ZipError("the ZIP64 end record is missing")
            fh.seek(position - _LOCATOR.size - _END64.size)
            record = _read_exactly(fh, _END64.size, "the ZIP64 end record")
            signature, _, _, _, disk, disk_dir, count_here, count, size, offset = _END64.unpack(record)
            if signature != END64:
                raise ZipError("bad magic number for the ZIP64 end record")
            position -= _LOCATOR.size + _END64.size
    if disk != 0 or disk_dir != 0 or count_here != count:
        raise ZipError("archives that span several disks are not supported")
    return EndRecord(count, size, offset, position, comment)


def is_zipfile(path: str) -> bool:
    """True if the file has a zip end record (zipfile.is_zipfile's test), whatever else is wrong with it."""
    try:
        with open(path, "rb") as fh:
            return find_end(fh) is not None
    except ZipError:
        return True  # an end record was found; reading the archive reports what is wrong
    except (OSError, ValueError, struct.error):
        return False


def _zip64_extra(extra: bytes, file_size: int, compress_size: int, offset: int) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF fields from the ZIP64 extended information (0x0001), in the spec's order."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if at + 4 + length > len(extra):
            raise ZipError(f"corrupt extra field {kind:04x} (size={length})")
        if kind == 0x0001:
            data, used = extra[at + 4 : at + 4 + length], 0
            values = [file_size, compress_size, offset]
            for i in range(3):
                if values[i] == _U32:
                    if used + 8 > len(data):
                        raise ZipError("corrupt ZIP64 extra field")
                    values[i] = struct.unpack_from("<Q", data, used)[0]
                    used += 8
            return values[0], values[1], values[2]
        at += 4 + length
    return file_size, compress_size, offset


class ZipReader:
    """The central directory of an archive in ``fh`` (which the caller keeps open and closes)."""

    def __init__(self, fh: BinaryIO, end: EndRecord | None = None) -> None:
        self._fh = fh
        end = end or find_end(fh)
        if end is None:
            raise ZipError("no end of central directory record (not a zip file)")
        self.comment = end.comment
        # Data prepended to the archive (a self-extractor's stub) shifts every offset: zipfile's "concat".
        concat = end.position - end.size - end.offset
        if concat < 0:
            raise ZipError("bad offset for the central directory (it would start outside the archive)")
        start = end.position - end.size
        fh.seek(start)
        directory = _read_exactly(fh, end.size, "the central directory")
        self.members: list[Member] = []
        self.by_name: dict[str, Member] = {}
        at = 0
        while at < len(directory):
            if len(directory) - at < _CENTRAL.size:
                raise ZipError("truncated central directory")
            (signature, _, _, extract_version, _, flags, method, _, _, crc, compress_size, file_size, name_length,
             extra_length, comment_length, _, _, _, offset) = _CENTRAL.unpack_from(directory, at)
            if signature != CENTRAL:
                raise ZipError("bad magic number for the central directory")
            if extract_version > _MAX_EXTRACT_VERSION:
                raise ZipError(f"zip file version {extract_version / 10:.1f} is not supported")
            at += _CENTRAL.size
            end_of_entry = at + name_length + extra_length + comment_length
            if end_of_entry > len(directory):
                raise ZipError("truncated central directory")
            raw_name = directory[at : at + name_length]
            extra = directory[at + name_length : at + name_length + extra_length]
            at = end_of_entry
            try:
                name = _name(raw_name, flags)
            except UnicodeDecodeError:
                raise ZipError("a member name is not valid UTF-8") from None
            file_size, compress_size, offset = _zip64_extra(extra, file_size, compress_size, offset)
            if name in self.by_name:
                raise Overlapping(f"duplicate member name {_shown(name)}")
            member = Member(name, flags, method, crc, compress_size, file_size, offset + concat, name_length)
            self.members.append(member)
            self.by_name[name] = member
        if len(self.members) != end.count:
            raise ZipError(f"the directory lists {len(self.members)} members, its end record {end.count}")
        # Each member's local header and data must fit before the next one starts (no overlapping members:
        # one compressed block shared by many entries is a known zip bomb) and before the directory.
        ordered = sorted(self.members, key=lambda m: m.header_offset)
        for i, member in enumerate(ordered):
            limit = member._limit = ordered[i + 1].header_offset if i + 1 < len(ordered) else start
            if member.header_offset + _LOCAL.size + member._name_length + member.compress_size > limit:
                raise Overlapping(f"{_shown(member.filename)} overlaps the next member or the directory")

    def namelist(self) -> list[str]:
        return [m.filename for m in self.members]

    def getinfo(self, name: str) -> Member:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"there is no item named {name!r} in the archive") from None

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def _data_start(self, member: Member) -> int:
        """Check the member's local header against the directory; where its data starts."""
        self._fh.seek(member.header_offset)
        header = _read_exactly(self._fh, _LOCAL.size, f"the local header of {_shown(member.filename)}")
        signature, _, _, flags, method, _, _, _, _, _, name_length, extra_length = _LOCAL.unpack(header)
        if signature != LOCAL:
            raise ZipError(f"bad magic number for the local header of {_shown(member.filename)}")
        if (flags | member.flag_bits) & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION):
            raise Encrypted(f"{member.filename} is encrypted (password protected)")
        if (flags | member.flag_bits) & FLAG_PATCHED:
            raise ZipError("compressed patched data is not supported")
        raw_name = _read_exactly(self._fh, name_length, f"the local header of {_shown(member.filename)}")
        try:
            name = _name(raw_name, flags)
        except UnicodeDecodeError:
            name = None
        if name != member.filename:
            raise ZipError(f"member name in the directory {_shown(member.filename)} and its local header differ")
        if method != member.compress_type:
            raise ZipError(f"{_shown(member.filename)}: the compression method of the directory and the local "
                           "header differ")
        start = member.header_offset + _LOCAL.size + name_length + extra_length
        if start + member.compress_size > member._limit:
            raise Overlapping(f"{_shown(member.filename)} overlaps the next member or the directory")
        return start

    def _stored(self, member: Member, position: int, size: int) -> Iterator[bytes]:
        """The member's bytes as the archive stores them (compressed or not), from ``position``, in pieces
        of at most ``size``."""
        left = member.compress_size
        while left:
            self._fh.seek(position)  # each read seeks: another member's stream may have moved the file
            data = self._fh.read(min(left, size))
            if not data:
                raise ZipError(f"{_shown(member.filename)} is cut short (file truncated)")
            position += len(data)
            left -= len(data)
            yield data

    def chunks(self, member: Member, size: int) -> Iterator[bytes]:
        """The member's bytes in pieces of at most ``size``; never more than the directory's ``file_size``
        (inflate is bounded by ``max_length``, whatever the compressed data holds). The CRC-32 and the size
        are checked at the end: a piece may have been yielded before the damage is found."""
        if member.compress_type not in (STORED, DEFLATED):
            raise ZipError(f"compression method {member.compress_type} is not supported")
        position = self._data_start(member)
        left = member.compress_size
        expected = member.file_size
        produced = crc = 0
        if member.compress_type == STORED:
            if left != expected:
                raise ZipError(f"{_shown(member.filename)} is stored, yet its sizes differ")
            for data in self._stored(member, position, size):
                left -= len(data)
                crc = zlib.crc32(data, crc)
                if not left and crc != member.CRC:
                    raise ZipError(f"bad CRC-32 for {_shown(member.filename)}")
                yield data
            if crc != member.CRC:
                raise ZipError(f"bad CRC-32 for {_shown(member.filename)}")
            return
        inflate = zlib.decompressobj(-15)
        compressed = self._stored(member, position, _READ)
        tail = b""
        while True:
            if tail:
                data = tail
            else:
                data = next(compressed, b"")
                left -= len(data)
            try:
                out = inflate.decompress(data, min(size, expected - produced + 1))
            except zlib.error as err:
                raise ZipError(f"{_shown(member.filename)}: bad deflate data ({err})") from None
            tail = inflate.unconsumed_tail
            if out:
                produced += len(out)
                if produced > expected:
                    # The directory's size is a lie (or the data is damaged): its CRC tells which, as zipfile's
                    # reader, which stops at the directory's size, would say.
                    crc = zlib.crc32(out[: len(out) - (produced - expected)], crc)
                    if crc != member.CRC:
                        raise ZipError(f"bad CRC-32 for {_shown(member.filename)}")
                    raise ZipError(f"{_shown(member.filename)} inflates past its size in the directory ({expected})")
                crc = zlib.crc32(out, crc)
            if inflate.eof:
                if tail or left or inflate.unused_data:
                    raise ZipError(f"{_shown(member.filename)}: data after the end of its deflate stream")
                if crc != member.CRC:
                    raise ZipError(f"bad CRC-32 for {_shown(member.filename)}")
                if produced != expected:
                    raise ZipError(f"{_shown(member.filename)} inflates to {produced} bytes, the directory says "
                                   f"{expected}")
                if out:
                    yield out
                return
            if not out and not tail and not left:
                raise ZipError(f"{_shown(member.filename)}: the deflate data ends early (file truncated)")
            if out:
                yield out


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "...")
