"""Implicit FTPS downloads and job-file lookup against the virtual printer (TLS session reuse enforced)."""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from printer_links import ACCESS_CODE, config_for
from pydantic import SecretStr

from server.printer.errors import JobFileNotFound, PrinterAuthError, PrinterTLSError, PrinterUnreachable
from server.printer.ftps import download, download_url, find_job_file
from server.printer.tls import PinStore
from server.sim.printer import VirtualPrinter

JOB = os.urandom(300_000)  # several data chunks


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("printer-ftps-certs")


@pytest.fixture
async def vp(cert_dir: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=cert_dir) as printer:
        printer.add_file("/cache/Würfel v2.gcode.3mf", JOB)
        yield printer


async def test_download_streams_to_a_temp_file_then_renames(vp: VirtualPrinter, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "jobs" / "job.3mf"
    result = await download(config_for(vp), "/cache/Würfel v2.gcode.3mf", dest, pins=PinStore(tmp_path),
                            progress=lambda done, total: seen.append((done, total)))
    assert result == dest and dest.read_bytes() == JOB
    assert seen[-1] == (len(JOB), len(JOB)) and len(seen) > 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["job.3mf"]  # no .part left behind


async def test_download_with_a_refused_access_code(vp: VirtualPrinter, tmp_path: Path) -> None:
    cfg = config_for(vp, access_code=SecretStr("99999999"))
    with pytest.raises(PrinterAuthError) as err:
        await download(cfg, "/cache/Würfel v2.gcode.3mf", tmp_path / "x", pins=None, attempts=1)
    assert "access code was refused" in str(err.value) and "99999999" not in str(err.value)
    assert not (tmp_path / "x").exists()


async def test_download_refuses_an_untrusted_or_mismatched_certificate(vp: VirtualPrinter,
                                                                       tmp_path: Path) -> None:
    with pytest.raises(PrinterTLSError, match="certificate not trusted"):
        await download(config_for(vp, ca_file=None), "/cache/a", tmp_path / "x", pins=None, attempts=1)
    with pytest.raises(PrinterTLSError, match="expected the serial 'OTHER'"):
        await download(config_for(vp, serial="OTHER"), "/cache/a", tmp_path / "x", pins=None, attempts=1)


async def test_missing_file_is_retried_then_reported(vp: VirtualPrinter, tmp_path: Path) -> None:
    with pytest.raises(JobFileNotFound, match=r"/cache/none\.3mf"):
        await download(config_for(vp), "/cache/none.3mf", tmp_path / "x", pins=None, attempts=2,
                       retry_delay=0.01)


async def test_file_appearing_after_the_print_started_is_fetched(vp: VirtualPrinter, tmp_path: Path) -> None:
    fetch = asyncio.create_task(download(config_for(vp), "/cache/late.gcode.3mf", tmp_path / "late",
                                         pins=None, attempts=50, retry_delay=0.1))
    await asyncio.sleep(0.05)
    vp.add_file("/cache/late.gcode.3mf", b"late job")
    assert (await fetch).read_bytes() == b"late job"


async def test_an_empty_file_is_waited_for(vp: VirtualPrinter, tmp_path: Path) -> None:
    vp.add_file("/cache/empty.3mf", b"")
    with pytest.raises(JobFileNotFound, match="still empty"):
        await download(config_for(vp), "/cache/empty.3mf", tmp_path / "x", pins=None, attempts=2,
                       retry_delay=0.01)


async def test_unreachable_printer(vp: VirtualPrinter, tmp_path: Path) -> None:
    cfg = config_for(vp, ftps_port=1)
    with pytest.raises(PrinterUnreachable, match="connection refused"):
        await download(cfg, "/cache/a", tmp_path / "x", pins=None, attempts=1)


@pytest.mark.parametrize(("url", "subtask_name", "gcode_file"), [
    ("file:///sdcard/cache/W%C3%BCrfel%20v2.gcode.3mf", None, None),
    ("ftp:///cache/Würfel v2.gcode.3mf", None, None),
    (None, "Würfel v2", "/data/Metadata/plate_1.gcode"),
    (None, "würfel V2", None),  # typed with other capitals
    ("file:///mnt/sdcard", "Würfel v2.3mf", "Metadata/plate_1.gcode"),
])
async def test_find_job_file(vp: VirtualPrinter, url: str | None, subtask_name: str | None,
                             gcode_file: str | None) -> None:
    found = await find_job_file(config_for(vp), url=url, subtask_name=subtask_name, gcode_file=gcode_file,
                                attempts=1)
    assert found == "/cache/Würfel v2.gcode.3mf"


async def test_find_job_file_at_the_root_and_not_found(vp: VirtualPrinter) -> None:
    vp.add_file("/cube.3mf", b"cube")
    assert await find_job_file(config_for(vp), url="ftp://cube.3mf", subtask_name=None, gcode_file=None,
                               attempts=1) == "/cube.3mf"
    assert await find_job_file(config_for(vp), url=None, subtask_name="absent", gcode_file=None,
                               attempts=2, retry_delay=0.01) is None
    assert await find_job_file(config_for(vp), url="https://example.invalid/x.3mf", subtask_name=None,
                               gcode_file=None) is None


class _CloudFiles(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/gone.3mf"):
            self.send_error(403)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(JOB)))
        self.end_headers()
        self.wfile.write(JOB)

    def log_message(self, *args: object) -> None:
        pass


async def test_download_url_for_cloud_prints(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CloudFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        seen: list[tuple[int, int | None]] = []
        dest = await download_url(f"{base}/models/x.3mf?X-Amz-Signature=abc", tmp_path / "c.3mf",
                                  progress=lambda done, total: seen.append((done, total)))
        assert dest.read_bytes() == JOB and seen[-1] == (len(JOB), len(JOB))
        with pytest.raises(JobFileNotFound, match="403"):
            await download_url(f"{base}/gone.3mf", tmp_path / "g.3mf")
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.3mf"]
