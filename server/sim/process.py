"""Layerwise as a separate OS process, for tests and benchmarks that kill it for real.

``LayerwiseProcess`` writes a TOML configuration into the data directory (each access code
in its own 0600 file, referenced through ``access_code_file``, so no code sits in the TOML
or on a command line), starts ``python -m server serve --config FILE`` with its output in
``data_dir/layerwise.log`` and waits for ``GET /healthz``. ``kill()`` is a real ``SIGKILL``;
``restart()`` starts it again on the same data directory and port, as a user's service
manager would after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from server.config import PrinterConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_NAME = "layerwise.log"
CONFIG_NAME = "layerwise.toml"
SECRETS_DIR = "secrets"


class LayerwiseProcessError(RuntimeError):
    """The process did not come up; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the short race until Layerwise binds it is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def restartable_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range, for a server that stops and starts again on it.

    A port the kernel handed out (``bind(0)``) can be taken, while the server is down, as the local
    port of any outgoing connection, and the restart then fails with "address already in use".
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.Random().sample(range(max(1024, low - 12000), low), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host)


def _toml_string(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only, never briefly wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def render_config(
    data_dir: Path,
    *,
    host: str,
    port: int,
    spoolman_url: str | None,
    printers: Sequence[PrinterConfig],
    code_files: Mapping[str, Path],
    seed_mappings: Mapping[str, Mapping[int, int]],
    log_level: str = "INFO",
    spoolman_timeout: float = 5.0,
    database_url: str | None = None,
) -> str:
    """The TOML text for ``serve``: pure, so a test can read what the process is given."""
    lines = [
        "[server]",
        f"host = {_toml_string(host)}",
        f"port = {port}",
        f"data_dir = {_toml_string(str(data_dir))}",
        f"log_level = {_toml_string(log_level)}",
        *([f"database_url = {_toml_string(database_url)}"] if database_url else []),
        "",
    ]
    if spoolman_url:
        lines += ["[spoolman]", f"url = {_toml_string(spoolman_url)}", f"timeout = {spoolman_timeout}", ""]
    for printer in printers:
        lines += [
            "[[printers]]",
            f"name = {_toml_string(printer.name)}",
            f"host = {_toml_string(printer.host)}",
            f"serial = {_toml_string(printer.serial)}",
            f"access_code_file = {_toml_string(str(code_files[printer.name]))}",
            f"mqtt_port = {printer.mqtt_port}",
            f"ftps_port = {printer.ftps_port}",
            f"tls = {_toml_string(printer.tls)}",
        ]
        if printer.model:
            lines.append(f"model = {_toml_string(printer.model)}")
        if printer.ca_file:
            lines.append(f"ca_file = {_toml_string(str(printer.ca_file))}")
        mapping = seed_mappings.get(printer.name)
        if mapping:
            pairs = ", ".join(f'"{tray}" = {spool}' for tray, spool in sorted(mapping.items()))
            lines.append(f"ams_mappings = {{ {pairs} }}")
        lines.append("")
    return "\n".join(lines)


class LayerwiseProcess:
    """``async with LayerwiseProcess(data_dir, spoolman_url=..., printers=[...]) as lw: lw.url``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        spoolman_url: str | None = None,
        printers: Sequence[PrinterConfig] = (),
        seed_mappings: Mapping[str, Mapping[int, int]] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        log_level: str = "INFO",
        spoolman_timeout: float = 5.0,
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._spoolman_url = spoolman_url
        self._printers = tuple(printers)
        self._seed_mappings = {name: dict(m) for name, m in (seed_mappings or {}).items()}
        self._log_level = log_level
        self._spoolman_timeout = spoolman_timeout
        self._database_url = database_url  # PostgreSQL instead of the SQLite file (several instances)
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._env = dict(env or {})  # set on top of the cleaned environment (e.g. the benchmark probe)

    def __repr__(self) -> str:  # no access codes: only where and whether it runs
        return f"LayerwiseProcess(url={self.url!r}, pid={self.pid}, data_dir='{self.data_dir}')"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secrets = self.data_dir / SECRETS_DIR
        secrets.mkdir(mode=0o700, exist_ok=True)
        code_files: dict[str, Path] = {}
        for index, printer in enumerate(self._printers):
            path = secrets / f"printer-{index}.access-code"
            _write_private(path, printer.access_code.get_secret_value())
            code_files[printer.name] = path
        text = render_config(
            self.data_dir,
            host=self.host,
            port=self.port,
            spoolman_url=self._spoolman_url,
            printers=self._printers,
            code_files=code_files,
            seed_mappings=self._seed_mappings,
            log_level=self._log_level,
            spoolman_timeout=self._spoolman_timeout,
            database_url=self._database_url,
        )
        _write_private(self.config_path, text)
        return self.config_path

    def _environment(self) -> dict[str, str]:
        # The caller's LAYERWISE_* variables would override the file (or be rejected as typos).
        env = {key: value for key, value in os.environ.items() if not key.startswith("LAYERWISE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"  # the log is read while the process runs
        return {**env, **self._env}

    async def start(self) -> None:
        if self.running:
            raise LayerwiseProcessError(f"already running (pid {self.pid})")
        config = self.write_config()
        self.starts += 1
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- LayerwiseProcess start {self.starts} ---\n")
            log.flush()
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", "serve", "--config", str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                cwd=str(PROJECT_ROOT), env=self._environment(),
            )  # fmt: skip
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not self.running:
                    code = self._process.returncode if self._process else None
                    raise LayerwiseProcessError(f"Layerwise exited with {code} while starting:\n{self._log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.url}/healthz")
                    if response.status_code == 200:
                        return
                if loop.time() > deadline:
                    await self.kill()
                    raise LayerwiseProcessError(
                        f"no /healthz within {self.startup_timeout:g} s:\n{self._log_tail()}"
                    )
                await asyncio.sleep(0.05)

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def kill(self) -> int | None:
        """``SIGKILL``: no shutdown code runs, exactly like a power cut of the host process."""
        process = self._process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        return await process.wait()

    async def terminate(self, timeout: float = 20.0) -> int | None:
        """A clean stop (``SIGTERM``: uvicorn runs the lifespan shutdown); ``SIGKILL`` after ``timeout``."""
        process = self._process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(timeout):
                return await process.wait()
        except TimeoutError:
            return await self.kill()

    async def restart(self) -> None:
        """Start again on the same data directory and port (after ``kill()``/``terminate()``, or kills first)."""
        if self.running:
            await self.kill()
        await self.start()

    async def __aenter__(self) -> LayerwiseProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.terminate()
