"""Plain clients of the virtual printer (ssl, ftplib, aiomqtt), written like a Bambu client would be.

A uniquely named module (not conftest) so `from printer_clients import ...` is unambiguous suite-wide.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from server.sim.printer import VirtualPrinter

FIXTURES = Path(__file__).parent.parent / "fixtures"
ACCESS_CODE = "12345678"


class ImplicitFtps(ftplib.FTP_TLS):
    """ftplib speaking like a Bambu client: TLS from the first byte, data connections resuming the session."""

    reuse_session = True

    def connect(self, host: str = "", port: int = 0, timeout: float = 10, source_address: Any = None) -> str:
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=None)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.sock.session if self.reuse_session else None
            conn = self.context.wrap_socket(conn, server_hostname=None, session=session)
        return conn, size


def client_context(printer: VirtualPrinter) -> ssl.SSLContext:
    """Trust the printer's CA; the name check is the CN == serial comparison, as with real printers."""
    context = ssl.create_default_context(cafile=str(printer.ca_cert_path))
    context.check_hostname = False
    return context


def ftps_login(printer: VirtualPrinter, password: str = ACCESS_CODE) -> ImplicitFtps:
    ftp = ImplicitFtps(context=client_context(printer))
    ftp.connect(printer.host, printer.ftps_port)
    ftp.login("bblp", password)
    ftp.prot_p()
    return ftp


class ReportCollector:
    """Collects the printer's reports from an MQTT client and waits for one that matches."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            async with self._arrived:
                self.messages.append(payload)
                self._arrived.notify_all()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                await self._arrived.wait()

    async def request(self, serial: str, payload: dict[str, Any]) -> None:
        await self.client.publish(f"device/{serial}/request", json.dumps(payload))

    async def wait_disconnected(self, timeout: float = 10) -> BaseException | None:
        """Wait until the connection ends; the error that ended it (None if it ended cleanly)."""
        async with asyncio.timeout(timeout):
            try:
                await self._task
            except aiomqtt.MqttError as error:
                return error
        return None

    def prints(self) -> list[dict[str, Any]]:
        return [m["print"] for m in self.messages if "print" in m]

    def stop(self) -> None:
        self._task.cancel()


def mqtt_client(printer: VirtualPrinter, password: str = ACCESS_CODE, **kwargs: Any) -> aiomqtt.Client:
    return aiomqtt.Client(printer.host, printer.mqtt_port, username="bblp", password=password,
                          tls_context=client_context(printer), **kwargs)


@contextlib.asynccontextmanager
async def report_subscription(client: aiomqtt.Client, serial: str) -> AsyncIterator[ReportCollector]:
    """Connect ``client``, subscribe to the printer's report topic and collect what arrives."""
    async with client:
        await client.subscribe(f"device/{serial}/report")
        collector = ReportCollector(client)
        try:
            yield collector
        finally:
            collector.stop()


def subscribed(printer: VirtualPrinter) -> contextlib.AbstractAsyncContextManager[ReportCollector]:
    return report_subscription(mqtt_client(printer), printer.serial)
