"""[server] https_port / LAYERWISE_HTTPS_PORT, and when Layerwise's own HTTPS gives way to the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_settings
from server.web.serve import local_https_port


def _settings(tmp_path: Path, text: str = "", env: dict[str, str] | None = None):
    path = tmp_path / "layerwise.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n{text}')
    return load_settings(path, env=env or {})


def test_on_by_default_on_7914_and_off_by_0_or_off(tmp_path: Path) -> None:
    assert _settings(tmp_path).server.https_port == 7914
    assert local_https_port(_settings(tmp_path)) == 7914
    assert _settings(tmp_path, "https_port = 8443\n").server.https_port == 8443
    assert _settings(tmp_path, env={"LAYERWISE_HTTPS_PORT": "9443"}).server.https_port == 9443
    for value in ("0", "off", "OFF", "false"):
        assert _settings(tmp_path, env={"LAYERWISE_HTTPS_PORT": value}).server.https_port == 0
    assert _settings(tmp_path, 'https_port = "off"\n').server.https_port == 0
    assert _settings(tmp_path, "https_port = false\n").server.https_port == 0


def test_a_bad_port_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings(tmp_path, env={"LAYERWISE_HTTPS_PORT": "70000"})
    assert "LAYERWISE_HTTPS_PORT: is 70000" in str(raised.value)


def test_a_reverse_proxy_or_the_users_own_certificate_take_precedence(tmp_path: Path) -> None:
    assert local_https_port(_settings(tmp_path, 'base_url = "https://layerwise.example.net"\n')) == 0
    assert local_https_port(_settings(tmp_path, 'base_url = "http://nas.lan:7913"\n')) == 7914
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    own = _settings(tmp_path, f'tls_certfile = "{cert}"\ntls_keyfile = "{key}"\n')
    assert local_https_port(own) == 0
