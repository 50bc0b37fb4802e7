"""Issue 12 item 7: ``layerwise simulate`` prints a ``[[printers]]`` block that works pasted as is
(``ca_file`` included): ``layerwise check`` with it reaches the virtual printer over MQTT and FTPS."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from server.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60  # an upper bound for a slow, loaded machine, never a measured duration


def test_the_printed_printers_block_pastes_into_a_working_configuration(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "simulate", "--mqtt-port", "0", "--ftps-port", "0",
         "--cert-dir", str(tmp_path / "certs")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    watchdog = threading.Timer(STARTUP_S, process.terminate)  # ends the read below if the block never comes
    watchdog.start()
    try:
        assert process.stdout is not None
        block: list[str] = []
        for line in process.stdout:
            if line.startswith("[[printers]]") or block:
                block.append(line.rstrip("\n"))
            if line.startswith("ca_file ="):
                break
        watchdog.cancel()
        assert block and block[-1].startswith("ca_file ="), block
        config = tmp_path / "layerwise.toml"
        config.write_text("\n".join(block) + "\n")
        printer = load_settings(config, env={}).printers[0]
        assert printer.tls == "verify" and printer.ca_file is not None
        done = subprocess.run([sys.executable, "-m", "server", "check", "--config", str(config)],
                              capture_output=True, text=True, env=env, timeout=STARTUP_S * 2)
        assert f'printer "{printer.name}" MQTT: ok' in done.stdout, done.stdout + done.stderr
        assert f'printer "{printer.name}" FTPS: ok' in done.stdout, done.stdout + done.stderr
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=STARTUP_S)
