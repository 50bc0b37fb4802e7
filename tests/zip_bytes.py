"""One-member zip archives built byte by byte, for tests where exactly one header field must disagree
(zipfile cannot be made to write them), and what the zip reader reads back. Shared by the zip reader's tests."""

from __future__ import annotations

import io
import struct
import zlib

from server.analysis.zipreader import ZipReader

STORED, DEFLATED, UTF8, PATCHED = 0, 8, 0x800, 0x20
CONTENT = b"G1 X1 Y2 E0.5\n" * 200


def deflated(content: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(content) + packer.flush()


def build(content: bytes = CONTENT, *, method: int = STORED, stored: bytes | None = None, name: bytes = b"a",
          flags: int = 0, local_name: bytes | None = None, local_flags: int | None = None,
          local_method: int | None = None, crc: int | None = None, file_size: int | None = None,
          extra: bytes = b"", comment: bytes = b"", version: int = 20, sizes: tuple[int, int] | None = None,
          following: bytes = b"") -> bytes:
    """One member. ``stored`` is what the archive holds (``content``, or its deflate stream); the ``local_*``
    arguments make the local header disagree with the directory entry; the entry may say other ``sizes``
    (file, compressed) and carry ``extra`` and ``comment``; ``following`` is appended to the directory
    (and counted in its size). The end record lists one entry."""
    if stored is None:
        stored = content if method == STORED else deflated(content)
    crc = zlib.crc32(content) if crc is None else crc
    file_size = len(content) if file_size is None else file_size
    local_name = name if local_name is None else local_name
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flags if local_flags is None else local_flags,
                        method if local_method is None else local_method, 0, 0, crc, len(stored), file_size,
                        len(local_name), 0) + local_name + stored
    entry_size, entry_compressed = (file_size, len(stored)) if sizes is None else sizes
    entry = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, version, 0, flags, method, 0, 0, crc,
                        entry_compressed, entry_size, len(name), len(extra), len(comment), 0, 0, 0, 0)
    directory = entry + name + extra + comment + following
    return local + directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(local), 0)


def whole(reader: ZipReader, name: str) -> bytes:
    """A member's bytes, read as the analysis reads them (in pieces)."""
    return b"".join(reader.chunks(reader.getinfo(name), 1 << 20))


def read_back(data: bytes, piece: int = 1 << 20) -> tuple[list[str], dict[str, bytes], bytes]:
    """What a caller of the reader sees: the names, every member's bytes by name, and the comment."""
    reader = ZipReader(io.BytesIO(data))
    return reader.namelist(), {m.filename: b"".join(reader.chunks(m, piece)) for m in reader.members}, reader.comment
