"""Every form of job-file URL printers send, resolved to FTPS paths."""

from __future__ import annotations

import pytest

from server.printer.jobpaths import candidate_paths, is_http_url, url_path


@pytest.mark.parametrize(("url", "first"), [
    ("file:///sdcard/x.gcode.3mf", "/x.gcode.3mf"),
    ("file:///mnt/sdcard/x.gcode.3mf", "/x.gcode.3mf"),
    ("file:///sdcard/cache/MyModel.gcode.3mf", "/cache/MyModel.gcode.3mf"),
    ("ftp:///x.gcode.3mf", "/x.gcode.3mf"),
    ("ftp://x.gcode.3mf", "/x.gcode.3mf"),
    ("ftp:///MyModel.3mf", "/MyModel.3mf"),
    ("/media/usb0/jobs/x.3mf", "/usb0/jobs/x.3mf"),
    ("/cache/x.3mf", "/cache/x.3mf"),
    ("file:///sdcard/W%C3%BCrfel%20v2.gcode.3mf", "/Würfel v2.gcode.3mf"),
    ("Testqube_Mulitcolor.3mf", "/Testqube_Mulitcolor.3mf"),
])
def test_url_forms(url: str, first: str) -> None:
    paths = candidate_paths(url, None, None)
    assert paths[0] == first
    assert len(paths) == len(set(paths))


def test_usb_path_is_also_tried_as_given() -> None:
    assert "/media/usb0/jobs/x.3mf" in candidate_paths("/media/usb0/jobs/x.3mf", None, None)


def test_unpacked_project_is_searched_by_subtask_name() -> None:
    paths = candidate_paths(None, "Air Slides", "/data/Metadata/plate_1.gcode")
    assert "/data/Metadata/plate_1.gcode" not in paths
    assert paths[:2] == ["/Air Slides.gcode.3mf", "/cache/Air Slides.gcode.3mf"]
    assert "/cache/Air Slides.3mf" in paths and "/sdcard/Air Slides.3mf" in paths


def test_folder_only_url_falls_back_to_subtask_name() -> None:
    assert candidate_paths("file:///mnt/sdcard", "", None) == []
    assert candidate_paths("file:///mnt/sdcard", "Cube", "Metadata/plate_1.gcode")[0] == "/Cube.gcode.3mf"


def test_subtask_name_with_suffix_tries_both_suffixes() -> None:
    paths = candidate_paths(None, "Würfel.3mf", "Würfel.3mf")
    assert paths[0] == "/Würfel.3mf"
    assert "/cache/Würfel.gcode.3mf" in paths
    assert "/cache/Cube.3mf" in candidate_paths(None, "Cube.gcode.3mf", None)


def test_http_urls_are_not_printer_paths() -> None:
    url = "https://or-cloud-upload-prod.s3.us-west-2.amazonaws.com/users/1/models/x/USb_1.3mf?X-Amz-Expires=3600"
    assert is_http_url(url) and url_path(url) is None
    assert not is_http_url("ftp:///x.3mf") and not is_http_url(None)
    assert candidate_paths(url, "Testqube", None)[0] == "/Testqube.gcode.3mf"
