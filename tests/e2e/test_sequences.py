"""The four real A1 print sequences, replayed message by message through the virtual printer.

Two LAN prints (no ``project_file``: the file is found on the printer by name over FTPS, the mapping is
learned from the tray reports) and two cloud prints (the echo's presigned S3 URL is pointed at a local
HTTP server holding the sliced file; the mapping is stated). Layerwise must arrive at the mapping in each
``.expected.json`` and bill each tray what the analysis says.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from e2e_stack import CUBE_1, CUBE_4, PRINT_FILES, SEQUENCES, Stack, StackFactory, analysis_of, per_tray, until
from litestar import Litestar, get
from litestar.response import Response

from server.jobs import store as job_store
from server.web.embedded import EmbeddedServer

pytestmark = pytest.mark.slow
CASES = {
    "a1-fw01.07-Testqube_Multicolor_local": CUBE_4,
    "a1-fw01.07-Testqube_Multicolor_cloud": CUBE_4,
    "a1-fw01.07-Testqube_local": CUBE_1,
    "a1-fw01.07-Testqube_cloud": CUBE_1,
}


def messages(name: str) -> list[dict[str, Any]]:
    lines = (SEQUENCES / f"{name}.log").read_text(encoding="utf-8").splitlines()
    return [json.loads(line.partition(" :: ")[2]) for line in lines]


def expected_mapping(name: str) -> dict[int, int]:
    doc = json.loads((SEQUENCES / f"{name}.expected.json").read_text(encoding="utf-8"))
    return {int(filament): int(tray) for filament, tray in doc["expected_assignments"].items()}


def file_server(path: Path) -> EmbeddedServer:
    """Serves ``path`` at every URL path, like the presigned S3 URL of a cloud print."""

    @get("/{key:path}", sync_to_thread=False)
    def sliced_file(key: str) -> Response[bytes]:
        return Response(path.read_bytes(), media_type="application/octet-stream")

    return EmbeddedServer(Litestar([sliced_file]), name="cloud-files")


def localised(message: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The same message with a cloud file URL moved to ``base_url`` (path and query kept)."""
    body = message.get("print")
    if not isinstance(body, dict) or not str(body.get("url", "")).startswith("https://"):
        return message
    url = urlsplit(body["url"])
    return {**message, "print": {**body, "url": f"{base_url}{url.path}?{url.query}"}}


async def replay(stack: Stack, reports: list[dict[str, Any]]) -> None:
    """Publish each recorded message once Layerwise has received the one before (MQTT keeps them in order,
    and the printer task handles one at a time)."""
    printer, task = stack.rigs["p0"].printer, stack.task("p0")
    for message in reports:
        before = task.last_seen
        await printer.publish_report(message)
        await until(lambda: task.last_seen != before, "the message received")  # noqa: B023


@pytest.fixture
async def cloud_files() -> AsyncIterator[dict[str, str]]:
    async with file_server(PRINT_FILES / CUBE_4) as four, file_server(PRINT_FILES / CUBE_1) as one:
        yield {CUBE_4: four.url, CUBE_1: one.url}


RESTART_CASES = [(name, False) for name in sorted(CASES)] + [
    ("a1-fw01.07-Testqube_Multicolor_local", True),
    ("a1-fw01.07-Testqube_Multicolor_cloud", True),
]


@pytest.mark.parametrize(("name", "restart"), RESTART_CASES,
                         ids=[f"{name}{'-restarted' if restart else ''}" for name, restart in RESTART_CASES])
async def test_replayed_a1_sequence(make_stack: StackFactory, cloud_files: dict[str, str], name: str,
                                    restart: bool) -> None:
    """``restarted``: Layerwise is down for 40 reports from the middle of the print (its checkpoint and the
    printer's full report after reconnecting carry the job on)."""
    file = CASES[name]
    analysis = analysis_of(file)
    reports = [localised(m, cloud_files[file]) for m in messages(name)]
    async with make_stack(("A1",), seed_state={"p0": reports[0]}) as stack:
        printer = stack.rigs["p0"].printer
        cloud = name.endswith("_cloud")
        for body in (m["print"] for m in reports if isinstance(m.get("print"), dict)):
            if body.get("gcode_file") and not cloud:  # the name a LAN print reports; the file is stored under it
                printer.add_file(f"/cache/{body['gcode_file']}", PRINT_FILES / file)
        if restart:
            middle = len(reports) // 2
            await replay(stack, reports[1:middle])
            await stack.web.stop()
            for message in reports[middle:middle + 40]:
                await printer.publish_report(message)  # to nobody
            await stack.restart()
            await replay(stack, reports[middle + 40:])
        else:
            await replay(stack, reports[1:])
        await stack.wait_ended("p0", "finished")
        job = stack.job("p0")
        assert job is not None
        assert job.announced == cloud
        if cloud:  # fetched over HTTP from the (relocated) presigned URL, not from the printer
            assert job.file_url is not None and job.file_url.startswith(cloud_files[file])
        expected = expected_mapping(name)
        assert {f: job.tray_for(f) for f in expected} == expected
        if not cloud:
            assert dict(job.learned) == expected
        await stack.wait_delivered()

        assert len(job_store.list_jobs(stack.runtime.db, "p0")) == 1  # a restart carried the same job on
        stack.assert_billed("p0", per_tray(analysis.totals(), expected))
        stack.assert_no_duplicate_bills()
