"""Helpers for the printer-adapter tests against the virtual printer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from server.config import PrinterConfig
from server.printer.link import LinkStatus, PrinterLink
from server.printer.state import merge_report
from server.sim.printer import VirtualPrinter

ACCESS_CODE = "12345678"


def config_for(vp: VirtualPrinter, **changes: Any) -> PrinterConfig:
    values: dict[str, Any] = {
        "name": "bench", "host": vp.host, "serial": vp.serial, "access_code": SecretStr(ACCESS_CODE),
        "mqtt_port": vp.mqtt_port, "ftps_port": vp.ftps_port, "ca_file": vp.ca_cert_path,
    }
    values.update(changes)
    return PrinterConfig(**values)


@dataclass
class LinkRecorder:
    """Collects what a running PrinterLink delivers and lets a test wait for a condition on it."""

    state: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[LinkStatus] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, payload: dict[str, Any]) -> None:
        self.messages.append(payload)
        if isinstance(payload.get("print"), dict) and payload["print"].get("command") == "push_status":
            self.state = merge_report(self.state, payload)
        async with self.changed:
            self.changed.notify_all()

    async def on_status(self, status: LinkStatus) -> None:
        self.statuses.append(status)
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)


@contextlib.asynccontextmanager
async def running_link(link: PrinterLink) -> AsyncIterator[LinkRecorder]:
    recorder = LinkRecorder()
    task = asyncio.create_task(link.run(recorder.on_message, recorder.on_status))
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
