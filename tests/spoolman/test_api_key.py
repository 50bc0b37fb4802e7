"""Spoolman behind an authenticating proxy: the client sends the configured API key as a bearer token,
and the key never shows in logs, reprs or `layerwise check`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.check import summary
from server.config import ConfigError, load_settings
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.spoolman import SpoolmanClient, SpoolmanUnreachable

API_KEY = "k3y-For-The-Proxy-0123456789"


@pytest.fixture
async def guarded() -> SpoolmanStandin:
    store = SpoolmanStore()
    seed_demo(store)
    async with SpoolmanStandin(store, api_key=API_KEY) as running:
        yield running


async def test_the_key_is_sent_and_required(guarded: SpoolmanStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with SpoolmanClient(guarded.url, retries=0, api_key=SecretStr(API_KEY)) as client:
        assert (await client.info())["version"]
        assert (await client.get_spool(1)).id == 1
        assert API_KEY not in repr(client)
    for wrong in (None, SecretStr("not-the-key")):
        async with SpoolmanClient(guarded.url, retries=0, api_key=wrong) as client:
            with pytest.raises(SpoolmanUnreachable, match=r"answered 401.*api_key") as caught:
                await client.info()
            assert caught.value.request_sent is False  # the proxy passed nothing on: safe to send again
    assert API_KEY not in caplog.text


def test_key_from_file_environment_or_toml_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "spoolman_api_key"
    secret.write_text(API_KEY + "\n")
    base = {"LAYERWISE_SPOOLMAN_URL": "http://spoolman:7912"}
    from_file = load_settings(None, env={**base, "LAYERWISE_SPOOLMAN_API_KEY_FILE": str(secret)})
    from_env = load_settings(None, env={**base, "LAYERWISE_SPOOLMAN_API_KEY": API_KEY})
    toml = tmp_path / "layerwise.toml"
    toml.write_text(f'[spoolman]\nurl = "http://spoolman:7912"\napi_key_file = "{secret}"\n')
    from_toml = load_settings(toml, env={})
    for settings in (from_file, from_env, from_toml):
        assert settings.spoolman.api_key is not None
        assert settings.spoolman.api_key.get_secret_value() == API_KEY
        for text in (repr(settings), str(settings), settings.model_dump_json(), summary(settings).detail):
            assert API_KEY not in text
        assert "API key set" in summary(settings).detail
    assert load_settings(None, env=base).spoolman.api_key is None


def test_key_problems_never_quote_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as both:
        load_settings(None, env={"LAYERWISE_SPOOLMAN_API_KEY": API_KEY,
                                 "LAYERWISE_SPOOLMAN_API_KEY_FILE": str(tmp_path / "missing")})
    assert "LAYERWISE_SPOOLMAN_API_KEY_FILE: is set together with LAYERWISE_SPOOLMAN_API_KEY" in str(both.value)
    with pytest.raises(ConfigError) as missing:
        load_settings(None, env={"LAYERWISE_SPOOLMAN_API_KEY_FILE": str(tmp_path / "missing")})
    assert "does not exist" in str(missing.value)
    with pytest.raises(ConfigError) as spaced:
        load_settings(None, env={"LAYERWISE_SPOOLMAN_API_KEY": "two words-" + API_KEY})
    assert "LAYERWISE_SPOOLMAN_API_KEY: has characters" in str(spaced.value)
    assert API_KEY not in str(spaced.value)
