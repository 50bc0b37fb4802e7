"""server.analysis.zipreader's central directory, built byte by byte: the exact refusals a user is shown
(archive.py passes a ``ZipError``'s text on), member comments, ZIP64 extra fields among other extra fields,
and members overlapping the next one, which are refused when the directory is read, before any member is.

zipfile is the oracle where it reads the archive at all.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from server.analysis.zipreader import Overlapping, ZipError, ZipReader, find_end
from tests.zip_bytes import CONTENT, DEFLATED, UTF8, build, deflated, whole

U32 = 0xFFFFFFFF


def field(kind: int, data: bytes, length: int | None = None) -> bytes:
    """One extra field; ``length`` may lie about the data that follows."""
    return struct.pack("<2H", kind, len(data) if length is None else length) + data


def refusal(data: bytes) -> str:
    with pytest.raises(ZipError) as caught:
        ZipReader(io.BytesIO(data))
    return str(caught.value)


# The refusals' exact words (archive.py shows them to the user).


def test_a_file_without_an_end_record_is_named_no_zip() -> None:
    assert refusal(b"G1 X1\n" * 100) == "no end of central directory record (not a zip file)"


def test_a_directory_offset_past_where_the_directory_is_refused_with_the_reason() -> None:
    data = bytearray(build())
    struct.pack_into("<L", data, len(data) - 6, len(data))  # the directory said to start after the end
    assert refusal(bytes(data)) == "bad offset for the central directory (it would start outside the archive)"


def test_a_file_cut_after_its_end_record_was_found_says_the_directory_is_cut_short() -> None:
    """archive.py finds the end record first and then reads the directory: the file may shrink in between
    (it is still being written)."""
    fh = io.BytesIO(build())
    end = find_end(fh)
    assert end is not None
    fh.truncate(end.position - 10)
    with pytest.raises(ZipError) as caught:
        ZipReader(fh, end)
    assert str(caught.value) == "the central directory is cut short (file truncated)"


def test_bytes_after_the_last_entry_too_few_for_another_are_a_truncated_directory() -> None:
    assert refusal(build(following=b"PK\x01\x02" + b"\0" * 20)) == "truncated central directory"


def test_an_entry_whose_name_runs_past_the_directory_is_a_truncated_directory() -> None:
    entry = bytes(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 0,
                              0, 0))
    assert refusal(build(following=entry + b"short")) == "truncated central directory"


def test_an_entry_without_its_signature_is_refused_with_the_reason() -> None:
    assert refusal(build(following=b"PK\x01\x03" + b"\0" * 42)) == "bad magic number for the central directory"


def test_a_newer_zip_version_is_refused_naming_it() -> None:
    assert refusal(build(version=64)) == "zip file version 6.4 is not supported"
    assert ZipReader(io.BytesIO(build(version=63))).namelist() == ["a"]  # zipfile's newest


def test_a_name_flagged_utf8_that_is_not_is_refused_with_the_reason() -> None:
    assert refusal(build(name=b"plate\xff.gcode", flags=UTF8)) == "a member name is not valid UTF-8"


# Member comments: the next entry starts after the comment.


def test_member_comments_are_skipped_as_zipfile_skips_them() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in (("Metadata/plate_1.gcode", CONTENT), ("Metadata/plate_1.json", b"{}")):
            info = zipfile.ZipInfo(name)
            info.comment = b"written by a slicer, with a comment longer than a directory entry" * 2
            archive.writestr(info, text, zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    reader = ZipReader(io.BytesIO(data))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert reader.namelist() == archive.namelist()
    assert whole(reader, "Metadata/plate_1.gcode") == CONTENT
    assert whole(reader, "Metadata/plate_1.json") == b"{}"


# ZIP64 extended information among other extra fields.


def zip64(*values: int) -> bytes:
    return field(0x0001, struct.pack(f"<{len(values)}Q", *values))


def test_zip64_sizes_after_other_extra_fields_are_found() -> None:
    """A timestamp (5 bytes) and a Unix field (11) first: the ZIP64 field is found after them, and its two
    values go to the file size and the compressed size in the spec's order."""
    stored = deflated(CONTENT)
    # Bytes 2-5 of the Unix field's data, read as a field header, claim 0xFFFF bytes: a reader that loses its
    # place among the fields fails loudly instead of looping.
    unix = field(0x7875, b"\x00\x00" + struct.pack("<2H", 0xAAAA, 0xFFFF) + b"\x01\x04\0\0\0")
    extra = field(0x5455, b"\x01\x00\x00\x00\x00") + unix + zip64(len(CONTENT), len(stored))
    data = build(method=DEFLATED, extra=extra, sizes=(U32, U32))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("a")
        assert (info.file_size, info.compress_size) == (len(CONTENT), len(stored))
    reader = ZipReader(io.BytesIO(data))
    member = reader.getinfo("a")
    assert (member.file_size, member.compress_size) == (len(CONTENT), len(stored))
    assert whole(reader, "a") == CONTENT


def test_a_zip64_size_beyond_2_to_the_63_is_read_unsigned() -> None:
    """Only the file size is in the ZIP64 field: read as unsigned, as zipfile reads it (and then refused when
    the member inflates to less)."""
    data = build(method=DEFLATED, extra=zip64(1 << 63), sizes=(U32, len(deflated(CONTENT))))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("a").file_size == 1 << 63
    reader = ZipReader(io.BytesIO(data))
    assert reader.getinfo("a").file_size == 1 << 63
    with pytest.raises(ZipError) as caught:
        whole(reader, "a")
    assert str(caught.value) == f"'a' inflates to {len(CONTENT)} bytes, the directory says {1 << 63}"


@pytest.mark.parametrize("extra", [
    field(0x0001, b""),  # a ZIP64 field of no data, the whole extra field (4 bytes)
    field(0x0001, struct.pack("<Q", len(CONTENT))),  # one value where two are needed
    field(0x0001, struct.pack("<Q", len(CONTENT)) + b"\0" * 7) + field(0x5455, b"\x01\0\0\0\0"),  # 15 of 16
])
def test_a_zip64_field_short_of_the_values_it_must_hold_is_refused(extra: bytes) -> None:
    assert refusal(build(extra=extra, sizes=(U32, U32))) == "corrupt ZIP64 extra field"


@pytest.mark.parametrize(("extra", "shown"), [
    (field(0xCAFE, b"\0" * 9, length=10), "cafe (size=10)"),  # one byte short
    (field(0x9901, b"\0" * 7, length=8), "9901 (size=8)"),  # the AES field's kind, above 0x7fff
    (field(0x5455, b"\0" * 5) + field(0x7875, b"\0" * 8, length=0x8001), "7875 (size=32769)"),
])
def test_an_extra_field_running_past_the_others_is_refused_naming_it(extra: bytes, shown: str) -> None:
    assert refusal(build(extra=extra)) == f"corrupt extra field {shown}"
    with pytest.raises(zipfile.BadZipFile, match="Corrupt extra field"):
        zipfile.ZipFile(io.BytesIO(build(extra=extra)))


# Overlapping members are refused when the directory is read, before any member is.


def test_a_member_reaching_the_next_ones_local_header_is_refused_with_the_directory() -> None:
    """The first member's compressed size claims one byte of the second's local header: refused before either
    is read (an analysis reads only some members), counting the 30-byte local header and the name."""
    name = b"Metadata/plate_1.gcode"
    first = build(name=name)
    local = first[: first.index(b"PK\x01\x02")]
    second = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, zlib.crc32(b"{}"), 2, 2, 1, 0) + b"b{}"
    entries = b""
    for entry_name, offset, size, crc in ((name, 0, len(CONTENT) + 1, zlib.crc32(CONTENT)),
                                          (b"b", len(local), 2, zlib.crc32(b"{}"))):
        entries += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, 0, 0, 0, crc, size, size,
                               len(entry_name), 0, 0, 0, 0, 0, offset) + entry_name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, len(entries), len(local) + len(second), 0)
    data = local + second + entries + end
    with pytest.raises(Overlapping) as caught:
        ZipReader(io.BytesIO(data))
    assert str(caught.value) == "'Metadata/plate_1.gcode' overlaps the next member or the directory"
    fits = data.replace(struct.pack("<2L", len(CONTENT) + 1, len(CONTENT) + 1), struct.pack("<2L", *[len(CONTENT)] * 2))
    assert whole(ZipReader(io.BytesIO(fits)), "b") == b"{}"
