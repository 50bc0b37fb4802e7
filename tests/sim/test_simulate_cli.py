"""``layerwise simulate`` as a process: it prints how to connect, prints a file, and answers clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
from printer_clients import FIXTURES, ReportCollector, report_subscription

ROOT = Path(__file__).resolve().parents[2]
TESTQUBE = FIXTURES / "mqtt" / "testqube-a1-4colour-bs2.04.gcode.3mf"
X1C_STATE = FIXTURES / "mqtt" / "push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json"


@contextlib.asynccontextmanager
async def simulate(*args: str) -> AsyncIterator[dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "simulate", "--mqtt-port", "0", "--ftps-port", "0", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    details: dict[str, str] = {}
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            while "storage" not in details:
                line = (await process.stdout.readline()).decode()
                assert line, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                if match := re.match(r"\s+(MQTT over TLS|implicit FTPS|CA certificate|storage)\s+(\S+)", line):
                    details[match.group(1)] = match.group(2)
        yield details
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0


def connect(details: dict[str, str],
            serial: str = "01P00A000000001") -> contextlib.AbstractAsyncContextManager[ReportCollector]:
    host, port = details["MQTT over TLS"].rsplit(":", 1)
    context = ssl.create_default_context(cafile=details["CA certificate"])
    context.check_hostname = False
    client = aiomqtt.Client(host, int(port), username="bblp", password="12345678", tls_context=context)
    return report_subscription(client, serial)


async def test_simulate_prints_a_file_to_the_end(tmp_path: Path) -> None:
    async with simulate("--cert-dir", str(tmp_path), "--file", str(TESTQUBE), "--layer-seconds", "0.01",
                        "--model", "A1", "--ams", "ams_lite:0", "--ams-mapping", "3,0,2,1") as details, \
            connect(details) as reports:
        await reports.request("01P00A000000001", {"pushing": {"command": "pushall"}})
        finished = await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "FINISH", 30)
        assert Path(details["storage"], "cache", TESTQUBE.name).read_bytes() == TESTQUBE.read_bytes()
    assert "msg" in finished["print"]


async def test_simulate_starts_from_a_recorded_state(tmp_path: Path) -> None:
    async with simulate("--cert-dir", str(tmp_path), "--state", str(X1C_STATE), "--model", "X1C") as details, \
            connect(details) as reports:
        await reports.request("01P00A000000001", {"pushing": {"command": "pushall"}})
        full = (await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0))["print"]
    assert full["subtask_name"] == "Garden Hose Healer: Male fitting"
    assert full["gcode_state"] == "FINISH"
    assert [unit["id"] for unit in full["ams"]["ams"]] == ["0", "1", "2", "128"]


async def test_simulate_loop_prints_again(tmp_path: Path) -> None:
    async with simulate("--cert-dir", str(tmp_path), "--file", str(TESTQUBE), "--layer-seconds", "0.005",
                        "--loop", "--lan") as details, connect(details) as reports:
        def finishes() -> int:
            return sum(1 for p in reports.prints() if p.get("gcode_state") == "FINISH")

        await reports.wait_for(lambda m: finishes() >= 2, 30)
    starts = [p for p in reports.prints() if p.get("gcode_state") == "PREPARE"]
    assert starts  # the second print was started while we listened
    assert not any(p.get("command") == "project_file" for p in reports.prints())
