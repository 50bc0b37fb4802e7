"""The bridge to a broker over TLS (mqtts://, its own CA) with a user name and password: it connects and
publishes; a wrong password is reported once, without the password."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.config import ServerConfig, Settings
from server.config.reach import HomeAssistantConfig
from server.home_assistant.bridge import Bridge
from server.https.authority import cert_pem, issue_server_certificate, key_pem, new_authority
from server.retry import Backoff
from server.runtime import Runtime
from tests.home_assistant.mosquitto import Mosquitto, mosquitto, retained

PASSWORD = "br0ker-pa55"


def tls_files(directory: Path) -> tuple[Path, str]:
    """A CA and a certificate for localhost signed by it; mosquitto's password file for user 'layerwise'."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    authority = new_authority(["localhost"], now, "test broker")
    server = issue_server_certificate(authority, ["localhost"], now)
    (directory / "ca.pem").write_bytes(cert_pem(authority.cert))
    (directory / "server.pem").write_bytes(cert_pem(server.cert))
    (directory / "server.key").write_bytes(key_pem(server.key))
    passwords = directory / "passwords"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([passwd, "-b", "-c", str(passwords), "layerwise", PASSWORD], check=True, capture_output=True)
    passwords.chmod(0o600)
    config = (f"cafile {directory / 'ca.pem'}\ncertfile {directory / 'server.pem'}\n"
              f"keyfile {directory / 'server.key'}\nallow_anonymous false\npassword_file {passwords}\n")
    return directory / "ca.pem", config


@contextlib.asynccontextmanager
async def bridge(tmp_path: Path, broker: Mosquitto, ca: Path, password: str) -> AsyncIterator[Bridge]:
    config = HomeAssistantConfig(mqtt_url=f"mqtts://localhost:{broker.port}", username="layerwise",
                                 password=SecretStr(password), ca_file=ca)
    runtime = Runtime.build(Settings(server=ServerConfig(data_dir=tmp_path / "data"), home_assistant=config))
    async with runtime.lifespan():
        running = Bridge(runtime, config, refresh_s=3600, backoff=Backoff(0.05, 0.2))
        task = asyncio.create_task(running.run())
        try:
            yield running
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_tls_and_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca, config = tls_files(tmp_path / "tls")
    context = ssl.create_default_context(cafile=str(ca))
    async with mosquitto(tmp_path / "broker", config, username="layerwise", password=PASSWORD,
                         tls_context=context) as broker:
        async with bridge(tmp_path, broker, ca, PASSWORD) as running:
            async with asyncio.timeout(30):
                await running.connected.wait()
            found = await retained(broker, "homeassistant/#", "layerwise/#")
        assert found["layerwise/status"] == b"online"
        assert "homeassistant/binary_sensor/layerwise/spoolman_reachable/config" in found

        caplog.set_level(logging.DEBUG)
        async with bridge(tmp_path / "wrong", broker, ca, "not-the-password") as running:
            async with asyncio.timeout(30):
                while not any("no connection" in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.05)
            assert not running.connected.is_set()
    refused = [r for r in caplog.records if "Home Assistant: no connection" in r.getMessage()]
    assert len(refused) == 1 and "mqtts://localhost" in refused[0].getMessage()
    assert all("not-the-password" not in r.getMessage() for r in caplog.records)
