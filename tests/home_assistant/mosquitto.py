"""A real mosquitto broker for a test: its own config in a temporary directory, a free port on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(self, directory: Path, port: int | None = None, extra_config: str = "",
                 **client_options: Any) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra_config = extra_config  # TLS and password lines; anonymous access when empty
        self.client_options = client_options
        self.host = "localhost" if extra_config else "127.0.0.1"  # the name a TLS certificate is for
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        if not Path(MOSQUITTO).exists():
            # A missing broker is a broken set-up (.ci/run installs it), not a reason to prove nothing.
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        config = self.directory / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser root\nlog_dest stderr\n"
                          + (self.extra_config or "allow_anonymous true\n"))
        self.log = (self.directory / "mosquitto.log").open("wb")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=self.log, stderr=self.log)
        async with asyncio.timeout(15):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    return
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 10)
            self.process = None
            self.log.close()

    def client(self) -> aiomqtt.Client:
        return aiomqtt.Client(self.host, self.port, **self.client_options)


@contextlib.asynccontextmanager
async def mosquitto(directory: Path, extra_config: str = "", **client_options: Any) -> AsyncIterator[Mosquitto]:
    directory.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(directory, extra_config=extra_config, **client_options)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def retained(broker: Mosquitto, *topic_filters: str) -> dict[str, bytes]:
    """Every retained message under the filters, as a new subscriber receives them.

    mosquitto sends a subscription's retained messages before anything published after the SUBACK, so a
    marker published then arrives after all of them: no waiting for quiet.
    """
    found: dict[str, bytes] = {}
    marker = f"test-marker/{uuid.uuid4().hex}"
    async with broker.client() as client:
        for topic_filter in (*topic_filters, marker):
            await client.subscribe(topic_filter, qos=1)
        await client.publish(marker, b"end", qos=1)
        async with asyncio.timeout(15):
            async for message in client.messages:
                if str(message.topic) == marker:
                    break
                found[str(message.topic)] = bytes(message.payload)  # type: ignore[arg-type]
    return found
