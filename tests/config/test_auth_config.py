"""[auth]: from the file and from the environment, with the key named in every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_settings


def test_defaults_require_a_sign_in() -> None:
    settings = load_settings(None, env={})
    assert settings.auth.required is True and settings.auth.trusted_networks == ()


def test_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "layerwise.toml"
    config.write_text('[auth]\nrequired = false\ntrusted_networks = ["192.168.1.0/24", "10.0.0.5"]\n')
    settings = load_settings(config, env={})
    assert settings.auth.required is False
    assert settings.auth.trusted_networks == ("192.168.1.0/24", "10.0.0.5")


def test_from_the_environment() -> None:
    settings = load_settings(None, env={"LAYERWISE_AUTH_REQUIRED": "no",
                                        "LAYERWISE_AUTH_TRUSTED_NETWORKS": "192.168.1.0/24, fd00::/8"})
    assert settings.auth.required is False
    assert settings.auth.trusted_networks == ("192.168.1.0/24", "fd00::/8")


@pytest.mark.parametrize(("env", "expected"), [
    ({"LAYERWISE_AUTH_TRUSTED_NETWORKS": "192.168.1.0/33"},
     "LAYERWISE_AUTH_TRUSTED_NETWORKS: '192.168.1.0/33' is not a network"),
    ({"LAYERWISE_AUTH_REQUIRD": "false"}, "LAYERWISE_AUTH_REQUIRD: unknown variable"),
])
def test_problems_name_the_key(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, env=env)
    assert any(line.startswith(expected) for line in raised.value.problems), raised.value.problems
