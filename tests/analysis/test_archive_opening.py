"""Opening an archive and naming what is wrong with it (issue 16): which file is closed and which is left to
the caller, the caps' exact edges, what an unreadable or non-zip file is called, how refused names and
unreadable plate references read, and what a checksum mismatch says."""

from __future__ import annotations

import errno
import io
import struct
import zipfile
from pathlib import Path

import pytest

from server.analysis import AnalysisError, ChecksumMismatch, Limits, NotAZip, PlateNotFound, UnsafeArchive
from server.analysis import archive as archive_module
from server.analysis.archive import GcodeReader, open_archive, plate_number

GCODE = b"T0\nM73 L1\nG1 E1\n"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _refusal(tmp_path: Path, name: str, placeholder: str | None = None) -> str:
    """The message refusing an archive holding a member ``name``; zipfile cuts a name at a NUL, so such a
    name is written as ``placeholder`` and its bytes patched in afterwards."""
    data = _zip_bytes({"Metadata/plate_1.gcode": GCODE, placeholder or name: b"x"})
    if placeholder:
        data = data.replace(placeholder.encode(), name.encode())
    path = tmp_path / "t.gcode.3mf"
    path.write_bytes(data)
    with pytest.raises(UnsafeArchive) as caught, open_archive(path):
        pass
    return str(caught.value)


@pytest.mark.parametrize(("name", "placeholder"), [("\\evil.gcode", None), ("c:evil.gcode", None),
                                                   ("Metadata/a\x00.gcode", "Metadata/aX.gcode")])
def test_backslash_rooted_lowercase_drive_and_nul_names_are_refused(
    tmp_path: Path, name: str, placeholder: str | None
) -> None:
    assert "path traversal" in _refusal(tmp_path, name, placeholder)


def test_a_refused_name_is_shown_whole_up_to_80_characters_and_cut_after(tmp_path: Path) -> None:
    assert _refusal(tmp_path, "/etc/passwd") == "unsafe member name '/etc/passwd' (path traversal)"
    eighty = "/" + "a" * 79
    assert _refusal(tmp_path, eighty) == f"unsafe member name '{eighty}' (path traversal)"
    eighty_one = "/" + "b" * 80
    assert _refusal(tmp_path, eighty_one) == f"unsafe member name '/{'b' * 79}...' (path traversal)"


def test_a_windows_plate_path_names_its_plate() -> None:
    assert plate_number("Metadata\\plate_3.gcode") == 3


def test_an_unreadable_plate_reference_is_shown_whole_up_to_80_characters_and_cut_after() -> None:
    for text, shown in [("model.xml", "model.xml"), ("x" * 80, "x" * 80), ("y" * 81, "y" * 80 + "...")]:
        with pytest.raises(PlateNotFound) as caught:
            plate_number(text)
        assert str(caught.value).startswith(f"cannot tell the plate from '{shown}' (expected")


def test_a_missing_file_says_why_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError) as caught, open_archive(tmp_path / "absent.gcode.3mf"):
        pass
    assert str(caught.value) == "cannot read the file: No such file or directory"


class _FailingRead(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise OSError(errno.EIO, "Input/output error")


def test_a_read_error_while_finding_the_directory_says_why() -> None:
    with pytest.raises(AnalysisError) as caught, open_archive(_FailingRead(_zip_bytes({"a": b"x"}))):
        pass
    assert str(caught.value) == "cannot read the file: Input/output error"


def test_a_non_zip_is_called_so(tmp_path: Path) -> None:
    with pytest.raises(NotAZip) as caught, open_archive(io.BytesIO(b"no archive here" * 10)):
        pass
    assert str(caught.value) == "not a zip archive (a .gcode.3mf is a zip)"


class _NoRewind(io.BytesIO):
    """Seeks anywhere but back to where it was given: the re-sniff after a failed directory read fails."""

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset == 0:
            raise OSError(errno.ESPIPE, "Illegal seek")
        return super().seek(offset, whence)


def test_a_non_zip_that_cannot_be_sniffed_again_is_not_called_truncated() -> None:
    # Over 64 KiB, so finding the end record never seeks to the start itself.
    with pytest.raises(NotAZip), open_archive(_NoRewind(b"n" * (70 << 10))):
        pass


def test_the_caps_on_members_and_directory_size_admit_an_archive_exactly_at_them() -> None:
    data = _zip_bytes({"Metadata/plate_1.gcode": GCODE, "a.txt": b"a", "b.txt": b"b"})
    # The end record (no comment) is the last 22 bytes: the member count at 10, the directory's size at 12.
    count, size = struct.unpack_from("<HI", data, len(data) - 22 + 10)
    assert count == 3
    with open_archive(io.BytesIO(data), Limits(max_members=3, max_directory_bytes=size)) as archive:
        assert len(archive.members) == 3


def test_a_callers_file_stays_open_and_a_file_opened_from_a_path_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _zip_bytes({"Metadata/plate_1.gcode": GCODE})
    given = io.BytesIO(data)
    with open_archive(given):
        pass
    assert not given.closed
    path = tmp_path / "p.gcode.3mf"
    path.write_bytes(data)
    opened: list[io.BufferedReader] = []

    def tracked_open(*args: object, **kwargs: object) -> io.BufferedReader:
        opened.append(open(*args, **kwargs))  # type: ignore[call-overload]  # noqa: SIM115 (the test checks its closing)
        return opened[-1]

    monkeypatch.setattr(archive_module, "open", tracked_open, raising=False)
    with open_archive(path):
        assert not opened[0].closed
    assert opened[0].closed


def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "p.gcode.3mf"
    path.write_bytes(_zip_bytes({"Metadata/plate_1.gcode": GCODE}))
    opener = open_archive(path)
    opener.__enter__()
    opener.__exit__(None, None, None)
    opener.__exit__(None, None, None)


def test_a_checksum_mismatch_shows_the_archives_digest_in_lower_case() -> None:
    reader = GcodeReader(iter([b"abc"]), "AB" * 16)
    with pytest.raises(ChecksumMismatch) as caught:
        list(reader)
    # MD5 of b"abc" (RFC 1321's test suite).
    assert str(caught.value) == f"plate gcode MD5 is 900150983cd24fb0d6963f7d28e17f72, the archive says {'ab' * 16}"
