"""Reading a .gcode.3mf safely: plate lookup, size and ratio caps, streaming inflate, MD5 check.

The plate gcode is never extracted to disk nor held whole in memory: ``ZipReader.chunks`` (our own zip
reader, zipreader.py says why) inflates the member in bounded pieces and ``GcodeReader`` counts and hashes them.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

from server.analysis.errors import (
    AnalysisError,
    ChecksumMismatch,
    NotAZip,
    PlateNotFound,
    TruncatedArchive,
    UnsafeArchive,
)
from server.analysis.records import NamedTuple
from server.analysis.zipreader import (
    DEFLATED,
    STORED,
    Encrypted,
    Member,
    Overlapping,
    ZipError,
    ZipReader,
    find_end,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (records.py says why)
if TYPE_CHECKING:
    from typing import BinaryIO

    Source = str | os.PathLike[str] | BinaryIO

# Plate numbers are written without leading zeros (the member of plate N is exactly plate_N.gcode) and
# stay short: thousands of digits would not even convert to an int.
_PLATE_MEMBER = re.compile(r"Metadata/plate_(0|[1-9][0-9]{0,8})\.gcode")
_PLATE_REF = re.compile(r"(?:^|/)plate_([0-9]{1,9})\.gcode$")
_PLATE_DIGITS = re.compile(r"[0-9]{1,9}")
# Methods that inflate in bounded steps; bzip2/lzma would expand a whole block at once, past the caps.
_METHODS = {STORED: "stored", DEFLATED: "deflate"}
ZIP_MAGIC = b"PK\x03\x04"


class Limits(NamedTuple):
    """Caps against hostile archives; the defaults fit any real print with a wide margin.

    The analysis's records are NamedTuples, not dataclasses: ``layerwise analyze`` would otherwise pay
    ~5 ms for importing dataclasses (and inspect) and ~0.5-1 ms per class for generating its methods."""

    max_gcode_bytes: int = 2 << 30  # decompressed plate gcode
    max_ratio: float = 100.0  # decompressed / compressed; real gcode deflates 4-15x
    max_metadata_bytes: int = 32 << 20  # each png member (thumbnail)
    max_thumbnail_bytes: int = 2 << 20  # the plate thumbnail kept for the web app; Bambu Studio's are under 200 KB
    max_config_bytes: int = 4 << 20  # each XML/JSON member parsed whole; real ones are under 50 KB
    max_members: int = 10_000
    max_directory_bytes: int = 4 << 20  # central directory, read whole; real ones are a few KB
    chunk_size: int = 1 << 20


DEFAULT_LIMITS = Limits()
# A process that analyses one file and ends (`layerwise analyze`) reads in quarter-MiB pieces: every buffer
# of a fresh process is fresh memory, and glibc maps each of 1 MiB anew (a page fault per 4 KiB: ~1,800 more
# on a 6.5 MB file) where it reuses smaller ones from its heap: ~3 ms CPU of ~0.1 s.
ONE_SHOT_LIMITS = DEFAULT_LIMITS._replace(chunk_size=1 << 18)


def plate_number(plate: int | str | None) -> int | None:
    """``2``, ``"2"``, ``"Metadata/plate_2.gcode"`` or a print command's param -> 2; None stays None."""
    if plate is None or isinstance(plate, int):
        return plate
    text = plate.strip()
    if _PLATE_DIGITS.fullmatch(text):
        return int(text)
    match = _PLATE_REF.search(text.replace("\\", "/"))
    if not match:
        shown = plate if len(plate) <= 80 else plate[:80] + "..."
        raise PlateNotFound(f"cannot tell the plate from {shown!r} (expected N or Metadata/plate_N.gcode)")
    return int(match.group(1))


def is_zip(source: Source) -> bool:
    """Sniff the first bytes (file objects are rewound)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            return fh.read(4) == ZIP_MAGIC
    start = source.tell()
    head = source.read(4)
    source.seek(start)
    return head == ZIP_MAGIC


def _check_name(name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise UnsafeArchive(f"unsafe member name {shown!r} (path traversal)")


class open_archive:  # a context manager used as a function: a class, for contextlib's import (~1-3 ms)
    """``with open_archive(source, limits) as archive:`` the archive's directory, checked against the limits;
    the file is closed at the end when it was opened here (a path)."""

    def __init__(self, source: Source, limits: Limits = DEFAULT_LIMITS) -> None:
        self._source = source
        self._limits = limits
        self._fh: BinaryIO | None = None

    def __enter__(self) -> ZipReader:
        source, limits = self._source, self._limits
        try:
            fh: BinaryIO = open(source, "rb") if isinstance(source, str | os.PathLike) else source
        except OSError as err:
            raise AnalysisError(f"cannot read the file: {err.strerror or err}") from None
        if fh is not source:
            self._fh = fh
        try:
            return _read_directory(fh, source, limits)
        except BaseException:
            self._close()
            raise

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _read_directory(fh: BinaryIO, source: Source, limits: Limits) -> ZipReader:
    try:
        origin = fh.tell()  # a file object is sniffed from where it was given, once the reader has moved it
        end = find_end(fh)
        # Refused before the directory is read whole and an entry made per record (memory).
        if end is not None and end.size > limits.max_directory_bytes:
            raise UnsafeArchive(
                f"the archive's directory is {end.size} bytes "
                f"(cap {limits.max_directory_bytes}): too many or too long member names"
            )
        if end is not None and end.count > limits.max_members:
            raise UnsafeArchive(f"archive has {end.count} members (cap {limits.max_members})")
        archive = ZipReader(fh, end)
    except Overlapping as err:
        raise UnsafeArchive(f"crafted archive: {_short(err)}") from None
    except ZipError as err:
        truncated = False
        try:
            fh.seek(origin)
            truncated = is_zip(fh)
        except (OSError, ValueError):
            pass
        if truncated:
            raise TruncatedArchive(f"archive is truncated or corrupt: {_short(err)}") from None
        raise NotAZip("not a zip archive (a .gcode.3mf is a zip)") from None
    except OSError as err:
        raise AnalysisError(f"cannot read the file: {err.strerror or err}") from None
    for info in archive.members:
        _check_name(info.filename)
    return archive


def _named(name: str) -> str:
    """A member name for a one-line message: as it is when printable and short, else quoted and cut."""
    if name.isprintable() and len(name) <= 80:
        return name
    return repr(name if len(name) <= 80 else name[:80] + "...")


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:160] + "..."


def plates(archive: ZipReader) -> list[int]:
    found = {int(m.group(1)) for m in map(_PLATE_MEMBER.fullmatch, archive.namelist()) if m}
    return sorted(found)


def resolve_plate(archive: ZipReader, plate: int | str | None) -> int:
    available = plates(archive)
    wanted = plate_number(plate)
    if wanted is None:
        if not available:
            raise PlateNotFound("the archive holds no sliced plate (no Metadata/plate_N.gcode)")
        return available[0]
    if wanted not in available:
        listed = ", ".join(map(str, available)) or "none"
        raise PlateNotFound(f"plate {wanted} is not in the archive (plates: {listed})")
    return wanted


def _member_info(archive: ZipReader, name: str, cap: int, limits: Limits) -> Member:
    info, shown = archive.getinfo(name), _named(name)
    if info.compress_type not in _METHODS:
        raise UnsafeArchive(f"{shown} uses compression method {info.compress_type}; .gcode.3mf files use deflate")
    if info.file_size > cap:
        raise UnsafeArchive(f"{shown} inflates to {info.file_size} bytes (cap {cap})")
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise UnsafeArchive(f"{shown} has compression ratio {info.file_size / info.compress_size:.0f} (zip bomb?)")
    return info


def read_member(
    archive: ZipReader, name: str, limits: Limits = DEFAULT_LIMITS, cap: int | None = None
) -> bytes | None:
    """A small metadata member, capped (``cap``, default ``max_metadata_bytes``); None if absent."""
    if name not in archive:
        return None
    cap = limits.max_metadata_bytes if cap is None else cap
    info = _member_info(archive, name, cap, limits)
    out = bytearray()
    for chunk in _inflate(archive, info, cap, limits):
        out += chunk
    return bytes(out)


def _inflate(archive: ZipReader, info: Member, cap: int, limits: Limits) -> Iterator[bytes]:
    """Stream a member, enforcing the size cap and the running ratio whatever the header claims."""
    ratio_cap = limits.max_ratio * max(info.compress_size, 1)
    total = 0
    try:
        # The reader never inflates past the directory's file_size, which _member_info checked against the
        # caps; counting here too keeps them whatever a caller passes.
        for chunk in archive.chunks(info, limits.chunk_size):
            total += len(chunk)
            if total > cap:
                raise UnsafeArchive(f"{_named(info.filename)} inflates beyond the cap of {cap} bytes")
            if total > ratio_cap:
                raise UnsafeArchive(f"{_named(info.filename)} inflates beyond ratio {limits.max_ratio:.0f} (zip bomb?)")
            yield chunk
    except Encrypted:
        raise UnsafeArchive(f"{_named(info.filename)} is encrypted (password protected)") from None
    except Overlapping as err:
        raise UnsafeArchive(f"crafted archive: {_short(err)}") from None
    except ZipError as err:
        raise TruncatedArchive(f"{_named(info.filename)} is truncated or corrupt: {_short(err)}") from None
    except OSError as err:
        raise TruncatedArchive(f"{_named(info.filename)} is truncated or corrupt: {_short(err)}") from None


class GcodeReader:
    """Yields a plate's gcode in chunks; after exhaustion, ``md5`` is the hex digest of what was read
    (empty with ``hashed=False``: ``layerwise analyze``'s summary shows no MD5, and the zip's CRC-32, which
    the reader checks anyway, already tells a damaged member; that saves ~9 ms and hashlib's import per 6.5 MB)."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        expected_md5: str | None = None,
        expected_size: int | None = None,
        *,
        hashed: bool = True,
    ) -> None:
        self._chunks = chunks
        self._hash = None
        if hashed:
            import hashlib  # here, not at the top: its import loads OpenSSL (~2 ms) and the CLI may not hash

            self._hash = hashlib.md5(usedforsecurity=False)
        self.expected_md5 = expected_md5
        self.expected_size = expected_size  # what the archive says, for choosing the indexer; never trusted
        self.md5 = ""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if self._hash is not None:
                self._hash.update(chunk)
            yield chunk
        if self._hash is None:
            return
        self.md5 = self._hash.hexdigest()
        if self.expected_md5 and self.expected_md5.lower() != self.md5:
            raise ChecksumMismatch(f"plate gcode MD5 is {self.md5}, the archive says {self.expected_md5.lower()}")


def plate_gcode(
    archive: ZipReader, plate: int, limits: Limits = DEFAULT_LIMITS, *, hashed: bool = True
) -> GcodeReader:
    name = f"Metadata/plate_{plate}.gcode"
    info = _member_info(archive, name, limits.max_gcode_bytes, limits)
    digest = None
    expected = read_member(archive, name + ".md5", limits) if hashed else None
    if expected is not None:
        digest = expected.decode("ascii", "replace").strip().split()[0] if expected.strip() else None
    chunks = _inflate(archive, info, limits.max_gcode_bytes, limits)
    return GcodeReader(chunks, digest, info.file_size, hashed=hashed)


def file_chunks(source: Source, limits: Limits = DEFAULT_LIMITS) -> Iterator[bytes]:
    """A plain .gcode file (path or binary file object) in chunks, capped."""
    total = 0
    try:
        fh: BinaryIO = open(source, "rb") if isinstance(source, str | os.PathLike) else source  # noqa: SIM115
    except OSError as err:
        raise AnalysisError(f"cannot read the file: {err.strerror or err}") from None
    try:
        while True:
            try:
                chunk = fh.read(limits.chunk_size)
            except OSError as err:
                raise AnalysisError(f"cannot read the file: {err.strerror or err}") from None
            if not chunk:
                return
            total += len(chunk)
            if total > limits.max_gcode_bytes:
                raise UnsafeArchive(f"gcode is larger than the cap of {limits.max_gcode_bytes} bytes")
            yield chunk
    finally:
        if fh is not source:
            fh.close()


def head(chunks: Iterator[bytes], size: int) -> bytes:
    """The first ``size`` bytes of a chunk stream (for the gcode header without a full parse)."""
    buf = io.BytesIO()
    for chunk in chunks:
        buf.write(chunk)
        if buf.tell() >= size:
            break
    return buf.getvalue()[:size]
