"""server.analysis.zipreader's search for the end record (``find_end``): the comment, bytes appended after
the archive, END signatures inside a member or a comment, and the ZIP64 locator's refusals.

Archives are written by zipfile where it can write them (zipfile is then the oracle too) and built byte by
byte where a field must be wrong in exactly one way. The refusals are checked by their whole message:
archive.py passes a ZipError's text to the user.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile

import pytest

from server.analysis.zipreader import ZipError, ZipReader
from tests.zip_bytes import read_back

CONTENT = b"G1 X1 Y2 E0.5\n" * 50


def written(comment: bytes = b"", members: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in (members if members is not None else {"a.gcode": CONTENT}).items():
            archive.writestr(name, content)
        archive.comment = comment
    return buffer.getvalue()


def read(data: bytes) -> tuple[dict[str, bytes], bytes]:
    """Every member's bytes by name, and the comment."""
    return read_back(data)[1:]


def refused(data: bytes, message: str) -> None:
    with pytest.raises(ZipError, match=f"^{re.escape(message)}$"):
        ZipReader(io.BytesIO(data))


def test_the_longest_comment_zipfile_writes_is_found() -> None:
    """The end record is then the first byte of the 64 KiB + 22 bytes searched: the window's far edge."""
    data = written(b"c" * 0xFFFF)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.comment == b"c" * 0xFFFF
    assert read(data) == ({"a.gcode": CONTENT}, b"c" * 0xFFFF)


def test_an_empty_archive_with_a_comment_is_found_at_the_first_byte() -> None:
    data = written(b"hello", members={})
    assert data.startswith(b"PK\x05\x06")
    assert read(data) == ({}, b"hello")


def test_a_comment_holding_an_end_record_is_not_taken_for_the_archives_end() -> None:
    """The record whose comment reaches exactly the end of the file wins over a later one inside its comment
    (zipfile takes the later one: that is why test_zipreader.py's generated comments hold no END signature)."""
    fake = b"PK\x05\x06" + bytes(16) + struct.pack("<H", 1)  # 0 members, a 1-byte comment it does not have
    assert read(written(fake)) == ({"a.gcode": CONTENT}, fake)


def test_an_end_record_inside_a_stored_member_is_not_the_archives_end() -> None:
    """A stored zip inside a commented archive: the search goes from the end, the member's record is earlier."""
    inner = written(members={})
    data = written(b"note", {"inner.zip": inner, "a.gcode": CONTENT})
    assert data.count(b"PK\x05\x06") == 2
    assert read(data) == ({"inner.zip": inner, "a.gcode": CONTENT}, b"note")


@pytest.mark.timeout(20)
def test_bytes_appended_after_the_archive_are_ignored_as_zipfile_does() -> None:
    data = written() + b"appended by a careless tool\n"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("a.gcode") == CONTENT
    assert read(data) == ({"a.gcode": CONTENT}, b"")


@pytest.mark.timeout(20)
def test_an_end_signature_too_close_to_the_end_to_be_a_record_is_skipped() -> None:
    """Fewer than 22 bytes follow it, so it is no record: the one before it is the end (zipfile gives up)."""
    data = written() + b"junk PK\x05\x06 junk"
    assert read(data) == ({"a.gcode": CONTENT}, b"")


def test_a_comment_cut_short_reads_as_far_as_it_goes_as_zipfile_does() -> None:
    """The last 22 bytes are the end record, but its comment length says 5 bytes follow that the file lacks."""
    data = bytearray(written())
    struct.pack_into("<H", data, len(data) - 2, 5)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert (archive.read("a.gcode"), archive.comment) == (CONTENT, b"")
    assert read(bytes(data)) == ({"a.gcode": CONTENT}, b"")


def end(count: int, size: int, offset: int, disk: int = 0, disk_dir: int = 0, count_here: int | None = None) -> bytes:
    count_here = count if count_here is None else count_here
    return struct.pack("<4s4H2LH", b"PK\x05\x06", disk, disk_dir, count_here, count, size, offset, 0)


def one_member() -> tuple[bytes, bytes]:
    """The local header with its data, and the directory entry, of a stored member "a"."""
    local = written(members={"a": CONTENT})
    directory = local.index(b"PK\x01\x02")
    return local[:directory], local[directory : local.index(b"PK\x05\x06")]


def zip64(*, signature: bytes = b"PK\x06\x06", locator_disk: int = 0, disks: int = 1) -> bytes:
    """One member, then a ZIP64 end record, its locator and an end record that defers to it."""
    data, entry = one_member()
    record = struct.pack("<4sQ2H2L4Q", signature, 44, 45, 45, 0, 0, 1, 1, len(entry), len(data))
    locator = struct.pack("<4sLQL", b"PK\x06\x07", locator_disk, len(data) + len(entry), disks)
    return data + entry + record + locator + end(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def test_a_hand_built_zip64_archive_reads_as_zipfile_reads_it() -> None:
    """The builder below is sound: what the refusals start from reads (and zipfile agrees)."""
    with zipfile.ZipFile(io.BytesIO(zip64())) as archive:
        assert archive.read("a") == CONTENT
    assert read(zip64()) == ({"a": CONTENT}, b"")


@pytest.mark.parametrize(("locator_disk", "disks"), [(1, 1), (0, 2)])
def test_a_zip64_locator_naming_another_disk_or_several_disks_is_refused(locator_disk: int, disks: int) -> None:
    refused(zip64(locator_disk=locator_disk, disks=disks), "archives that span several disks are not supported")


def test_a_zip64_end_record_with_a_bad_signature_is_refused() -> None:
    refused(zip64(signature=b"PK\x06\x05"), "bad magic number for the ZIP64 end record")


@pytest.mark.parametrize("before", [0, 1, 55])
def test_a_zip64_locator_with_no_room_for_the_zip64_end_record_is_refused(before: int) -> None:
    """The locator is the first thing in the file (or has fewer than 56 bytes before it)."""
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)
    refused(b"x" * before + locator + end(0, 0, 0), "the ZIP64 end record is missing")


@pytest.mark.parametrize("fields", [{"disk_dir": 1}, {"disk": 1}, {"count_here": 0}])
def test_an_end_record_of_a_multi_disk_archive_is_refused(fields: dict[str, int]) -> None:
    data, entry = one_member()
    several = "archives that span several disks are not supported"
    refused(data + entry + end(1, len(entry), len(data), **fields), several)
