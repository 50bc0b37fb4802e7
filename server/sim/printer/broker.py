"""The printer's MQTT endpoint: an amqtt broker with a TLS listener and the printer's login rule.

A Bambu printer is itself the MQTT broker: clients log in as ``bblp`` with the LAN access code over TLS
(port 8883), subscribe to ``device/<serial>/report`` and publish commands on ``device/<serial>/request``.
amqtt loads plugins by dotted path with a dataclass config, so the two plugins below find their broker
through a per-process registry key instead of receiving the access code in their (loggable) config.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin
from amqtt.session import ApplicationMessage, Session

from server.sim.printer.certs import PrinterCertificates

log = logging.getLogger(__name__)

USERNAME = "bblp"
RequestHandler = Callable[[dict[str, Any]], Awaitable[None]]

_BROKERS: dict[str, PrinterBroker] = {}


def report_topic(serial: str) -> str:
    return f"device/{serial}/report"


def request_topic(serial: str) -> str:
    return f"device/{serial}/request"


class AccessCodeAuthPlugin(BaseAuthPlugin):
    """Accept ``bblp`` + access code only; anonymous and wrong logins get CONNACK 'not authorized'."""

    @dataclass
    class Config:
        broker_key: str = ""

    async def authenticate(self, *, session: Session) -> bool:
        broker = _BROKERS.get(self.config.broker_key)
        if broker is None:
            return False
        return broker.credentials_match(session.username, session.password)


class RequestListenerPlugin(BasePlugin):
    """Hands every JSON message published on the request topic to the printer."""

    @dataclass
    class Config:
        broker_key: str = ""

    async def on_broker_message_received(self, *, client_id: str, message: ApplicationMessage | None) -> None:
        broker = _BROKERS.get(self.config.broker_key)
        if broker is None or message is None or message.topic != broker.request_topic:
            return
        try:
            payload = json.loads(bytes(message.data or b""))
        except ValueError:
            log.info("ignoring a request that is not JSON from %s", client_id)
            return
        if isinstance(payload, dict):
            await broker.on_request(payload)


class _QuietBroker(Broker):
    """amqtt, minus a traceback on stderr each time a refused client hangs up before the broker closes."""

    async def stream_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               listener_name: str) -> None:
        try:
            await super().stream_connected(reader, writer, listener_name)
        except (ConnectionError, ssl.SSLError) as error:
            log.debug("client connection ended: %s", error)


class PrinterBroker:
    """Start/stop an amqtt broker on a fixed port; publish reports; forward requests."""

    def __init__(self, *, serial: str, access_code: str, certs: PrinterCertificates, on_request: RequestHandler,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.serial = serial
        self.host = host
        self.port = port
        self.on_request = on_request
        self.request_topic = request_topic(serial)
        self.report_topic = report_topic(serial)
        self._access_code = access_code
        self._certs = certs
        self._key = uuid.uuid4().hex
        self._broker: Broker | None = None

    def __repr__(self) -> str:
        return f"PrinterBroker(serial={self.serial!r}, host={self.host!r}, port={self.port})"

    @property
    def running(self) -> bool:
        return self._broker is not None

    def credentials_match(self, username: str | None, password: str | None) -> bool:
        if username != USERNAME or password is None:
            return False
        return hmac.compare_digest(password.encode(), self._access_code.encode())

    async def start(self) -> None:
        if self._broker is not None:
            return
        _BROKERS[self._key] = self
        plugin_config = {"broker_key": self._key}
        config = {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{self.host}:{self.port}",
                    "ssl": True,
                    "certfile": str(self._certs.chain),
                    "keyfile": str(self._certs.key),
                },
            },
            # Replacing the default plugin set drops anonymous access and the $SYS publisher.
            "plugins": {
                f"{__name__}.AccessCodeAuthPlugin": plugin_config,
                f"{__name__}.RequestListenerPlugin": plugin_config,
            },
        }
        broker = _QuietBroker(config)
        await broker.start()
        server = broker._servers["default"].instance  # amqtt has no public accessor for the bound socket
        self.port = server.sockets[0].getsockname()[1]
        self._broker = broker

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def publish(self, payload: dict[str, Any]) -> None:
        if self._broker is None:
            return
        data = json.dumps(payload, separators=(",", ":")).encode()
        # Printers publish reports with QoS 0.
        await self._broker.internal_message_broadcast(self.report_topic, data, qos=0)

    def subscribers(self, topic: str) -> list[str]:
        """Client ids of the connected clients subscribed to ``topic``: who a report published now reaches."""
        broker = self._broker
        if broker is None:
            return []
        # amqtt has no public accessor for its subscriptions.
        return sorted({session.client_id for a_filter, subscriptions in broker._subscriptions.items()
                       if broker._matches(topic, a_filter)
                       for session, _qos in subscriptions if session.transitions.state == "connected"})

    async def drop_connections(self) -> None:
        """Cut every client's TCP connection; the listener stays up so clients can reconnect."""
        if self._broker is None:
            return
        for _session, handler in list(self._broker._sessions.values()):
            writer = handler.writer
            if writer is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    await writer.close()

    def forget(self) -> None:
        _BROKERS.pop(self._key, None)
