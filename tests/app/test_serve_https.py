"""`layerwise serve` serves HTTPS itself when [server] has a certificate and key (camera access on phones)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.sim.printer.certs import ensure_certificates
from server.web.embedded import bind_tcp


def test_serve_speaks_https_with_the_configured_certificate(tmp_path: Path) -> None:
    certs = ensure_certificates(tmp_path / "certs", "layerwise-test")
    with bind_tcp("127.0.0.1", 0) as probe:
        port = probe.getsockname()[1]
    config = tmp_path / "layerwise.toml"
    config.write_text(f'''
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{tmp_path / 'data'}"
tls_certfile = "{certs.chain}"
tls_keyfile = "{certs.key}"

[spoolman]
url = "http://127.0.0.1:9"
''')
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The certificate names the printer-style serial, not the address: trust its CA, skip the name.
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        context.check_hostname = False
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "layerwise serve did not answer over HTTPS"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert response.url.scheme == "https"
    finally:
        server.terminate()
        server.wait(timeout=10)
