"""Issue 13: a phone on the home network, first over plain HTTP, then over Layerwise's own HTTPS.

A real ``layerwise serve`` with a printer configured and no certificate; Chromium reaches it as
``printer-pi.lan`` (mapped to 127.0.0.1 inside Chromium, so nothing leaves this machine and the page is
not on localhost, which would be a secure context even over HTTP).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from playwright.sync_api import BrowserContext, Playwright, expect
from web_stack import CHROMIUM, CHROMIUM_ARGS, PHONE

from server.https.authority import fingerprint, san_names, spki_sha256
from server.web.embedded import bind_tcp
from tests.app.test_first_start import _wait_healthy

NAME = "printer-pi.lan"
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")
STARTUP_S = 60  # an upper bound for a slow, loaded machine, never a measured duration


def _free_port() -> int:
    with bind_tcp("127.0.0.1", 0) as probe:
        return probe.getsockname()[1]


@dataclass
class Served:
    http_port: int
    https_port: int
    data_dir: Path

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def authority(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca_file.read_bytes())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("phone")
    with socket.socket() as printer:  # a printer that accepts and never answers: configured, offline
        printer.bind(("127.0.0.1", 0))
        printer.listen()
        running = Served(_free_port(), _free_port(), folder / "data")
        config = folder / "layerwise.toml"
        config.write_text(f'''
[server]
host = "127.0.0.1"
port = {running.http_port}
https_port = {running.https_port}
data_dir = "{running.data_dir}"

[spoolman]
url = "http://127.0.0.1:9"

[[printers]]
name = "X1C"
host = "127.0.0.1"
serial = "00M09A350100009"
access_code = "12345678"
tls = "insecure"
mqtt_port = {printer.getsockname()[1]}
''')
        process = subprocess.Popen([sys.executable, "-m", "server", "serve", "--config", str(config)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_healthy(running.http_port, process)
            _wait_listening(running.https_port, process)  # HTTPS starts just after HTTP is up
            yield running
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=STARTUP_S)
            assert "PRIVATE KEY" not in output  # the authority's key never reaches the log


def _wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    for _ in range(STARTUP_S * 10):
        assert process.poll() is None, "layerwise serve exited"
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on the HTTPS port {port}")


def test_https_answers_with_a_certificate_from_layerwises_authority(served: Served) -> None:
    context = ssl.create_default_context(cafile=str(served.ca_file))  # chain, name and name constraints
    with socket.create_connection(("127.0.0.1", served.https_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    names = san_names(leaf)
    assert "127.0.0.1" in names and socket.gethostname().lower() in names
    leaf.verify_directly_issued_by(served.authority())
    response = httpx.get(f"https://127.0.0.1:{served.https_port}/healthz", verify=context)
    assert response.json() == {"status": "ok"}


def test_the_downloads_are_the_authority_and_never_a_key(served: Served) -> None:
    base = f"http://127.0.0.1:{served.http_port}/setup/"
    der = httpx.get(base + "layerwise-ca.crt")
    assert der.headers["content-type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(der.content) == served.authority()
    pem = httpx.get(base + "layerwise-ca.pem")
    assert x509.load_pem_x509_certificate(pem.content) == served.authority()
    profile = httpx.get(base + "layerwise.mobileconfig")
    assert profile.headers["content-type"] == "application/x-apple-aspen-config"
    (payload,) = plistlib.loads(profile.content)["PayloadContent"]
    assert x509.load_der_x509_certificate(payload["PayloadContent"]) == served.authority()
    assert httpx.get(base + "ca-key.pem").status_code == 404
    for body in (der.content, pem.content, profile.content):
        assert b"PRIVATE" not in body


def _phone(playwright: Playwright, profile: Path, *extra: str, env: dict[str, str] | None = None) -> BrowserContext:
    """A fresh Chromium profile on a "phone" that reaches Layerwise as printer-pi.lan, with a fake camera."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir=profile, executable_path=CHROMIUM, viewport=PHONE, permissions=["camera"],
        user_agent=ANDROID, env=env,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1", "--disable-features=HttpsUpgrades",
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", *extra],
    )


def _trusting(served: Served, home: Path) -> tuple[list[str], dict[str, str] | None]:
    """Chromium arguments and environment for a browser that trusts Layerwise's authority: imported into a
    fresh NSS database (Chromium on Linux reads $HOME/.pki/nssdb), as a person imports it into a phone's
    store; Chromium then checks the chain, the names and the authority's name constraints itself. Without
    certutil (Debian's libnss3-tools, which .ci/run installs): trust the authority's key by flag instead."""
    certutil = shutil.which("certutil")
    if certutil is None:
        return [f"--ignore-certificate-errors-spki-list={spki_sha256(served.authority())}"], None
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-n", "Layerwise", "-t", "C,,", "-i", str(served.ca_file)],
                   check=True)
    return [], {**os.environ, "HOME": str(home)}


CAMERA = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: true});
  const live = stream.getVideoTracks().length;
  stream.getTracks().forEach((t) => t.stop());
  return live;
}"""


@pytest.mark.browser
def test_a_phone_that_does_not_trust_layerwise_gets_the_setup_page(
    playwright: Playwright, served: Served, tmp_path: Path, artifacts: Path
) -> None:
    context = _phone(playwright, tmp_path / "profile")
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"http://{NAME}:{served.http_port}/")
        expect(page.locator("h1")).to_have_text("Set up this phone")
        assert page.url == f"http://{NAME}:{served.http_port}/setup"
        assert page.evaluate("window.isSecureContext") is False
        expect(page.locator("#setup-status")).to_have_attribute("data-state", "untrusted")
        origin = f"https://{NAME}:{served.https_port}"
        expect(page.locator("#https-link")).to_have_attribute("href", origin + "/")
        expect(page.locator(".setup-qr svg")).to_be_visible()
        expect(page.locator(".fingerprint")).to_have_text(fingerprint(served.authority()))
        expect(page.locator('.setup-platform[data-platform="android"]')).to_have_attribute("open", "")
        for link in ("layerwise-ca.crt", "layerwise-ca.pem", "layerwise.mobileconfig"):
            expect(page.locator(f'a[href="/setup/{link}"]').first).to_be_attached()
        with page.expect_download() as download:
            page.locator('a[href="/setup/layerwise-ca.crt"]').first.click()
        saved = download.value.path()
        assert x509.load_der_x509_certificate(Path(saved).read_bytes()) == served.authority()
        page.screenshot(path=artifacts / "phone-setup.png", full_page=True)
        # The name the phone typed is now in the certificate (it learnt it from the page's Host).
        assert NAME in san_names(x509.load_pem_x509_certificates(
            (served.data_dir / "tls" / "server.pem").read_bytes())[0])
        # "Stay on plain HTTP": the dashboard, without camera.
        page.locator("#stay-http").click()
        expect(page.locator(".brand")).to_be_visible()
        assert page.url == f"http://{NAME}:{served.http_port}/"
    finally:
        context.close()


@pytest.mark.browser
def test_a_phone_that_trusts_layerwise_goes_to_https_installs_the_app_and_gets_the_camera(
    playwright: Playwright, served: Served, tmp_path: Path
) -> None:
    args, env = _trusting(served, tmp_path / "home")
    context = _phone(playwright, tmp_path / "profile", *args, env=env)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"http://{NAME}:{served.http_port}/")
        page.wait_for_url(f"https://{NAME}:{served.https_port}/")  # the set-up page moved on by itself
        assert page.evaluate("window.isSecureContext") is True
        assert page.evaluate(CAMERA) == 1
        state = page.evaluate(
            "async () => { const r = await navigator.serviceWorker.ready; return r.active && r.active.state; }"
        )
        assert state in ("activating", "activated")
        session = context.new_cdp_session(page)
        assert session.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    finally:
        context.close()
