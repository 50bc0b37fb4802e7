"""Issue 12, items 4, 7 and 11: what a new user's configuration does at start, pure (no processes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import env_names, env_warnings, load_settings
from server.web.serve import nothing_configured

ROOT = Path(__file__).resolve().parents[2]
PRINTER = """
[[printers]]
name = "Workshop X1C"
host = "192.168.1.20"
serial = "00M09A350100001"
access_code = "12345678"
"""


def test_a_misspelt_layerwise_variable_is_a_warning_with_did_you_mean() -> None:
    settings_ = load_settings(None, env={"LAYERWISE_DATADIR": "/srv/layerwise", "LAYERWISE_PORT": "8000"})
    assert settings_.warnings == (
        "LAYERWISE_DATADIR: unknown variable (did you mean 'LAYERWISE_DATA_DIR'?); it is ignored",
    )
    assert settings_.server.port == 8000


@settings(max_examples=100)
@given(st.sampled_from(env_names()))
def test_every_variable_the_loader_reads_is_never_warned_about(name: str) -> None:
    assert env_warnings({name: "x", "PATH": "/bin", "LAYERWISE": "x"}) == []


def test_the_benchmarks_instrument_variables_are_not_called_typos() -> None:
    # bench.farm starts Layerwise with them; a warning there said a variable that works was ignored.
    from server.instruments import INSTRUMENTS_ENV, PROFILE_ENV

    assert env_warnings({INSTRUMENTS_ENV: "/tmp/i.json", PROFILE_ENV: "/tmp/p.pstats"}) == []
    assert env_warnings({"LAYERWISE_INSTRUMENT_FILE": "x"}) != []


def test_seed_mappings_name_their_source(tmp_path: Path) -> None:
    config = tmp_path / "layerwise.toml"
    config.write_text(PRINTER + 'ams_mappings = { "0" = 12 }\n')
    assert load_settings(config, env={}).seed_sources == {"Workshop X1C": "printers[0].ams_mappings"}
    both = load_settings(config, env={"LAYERWISE_AMS_MAPPINGS": "1:13"})
    assert both.seed_mappings == {"Workshop X1C": {0: 12, 1: 13}}
    assert both.seed_sources == {"Workshop X1C": "printers[0].ams_mappings and LAYERWISE_AMS_MAPPINGS"}
    config.write_text(PRINTER)
    env_only = load_settings(config, env={"LAYERWISE_AMS_MAPPINGS": "1:13"})
    assert env_only.seed_sources == {"Workshop X1C": "LAYERWISE_AMS_MAPPINGS"}


def test_the_example_file_seeds_no_spools() -> None:
    # Spools 12 and 13 exist in nobody's Spoolman: the example ships its mapping commented out.
    settings_ = load_settings(ROOT / "layerwise.example.toml", env={})
    assert settings_.seed_mappings == {}
    assert "# ams_mappings" in (ROOT / "layerwise.example.toml").read_text()


def _args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"config": None, "host": None, "port": None, "data_dir": None, **given})


def test_the_demo_runs_only_when_nothing_at_all_is_configured(tmp_path: Path) -> None:
    bare = load_settings(None, env={})
    assert nothing_configured(bare, _args(), {"PATH": "/bin"})
    assert nothing_configured(bare, _args(port=8000), {})  # where to show the demo is not a configuration
    assert nothing_configured(bare, _args(), {"LAYERWISE_PORT": "8000", "LAYERWISE_HOST": "0.0.0.0",
                                              "LAYERWISE_LOG_LEVEL": "DEBUG"})
    assert not nothing_configured(bare, _args(data_dir=str(tmp_path)), {})
    assert not nothing_configured(bare, _args(), {"LAYERWISE_DATA_DIR": str(tmp_path)})
    assert not nothing_configured(bare, _args(), {"LAYERWISE_DATADIR": str(tmp_path)})  # a typo, still meant
    config = tmp_path / "server-only.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    server_only = load_settings(config, env={})
    assert not server_only.printers
    assert not nothing_configured(server_only, _args(config=config), {})


def test_demo_settings_carry_the_demo_flag_and_their_seed_source(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from server.sim.demo import DEMO_PRINTER, demo_settings

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    printer = SimpleNamespace(host="127.0.0.1", mqtt_port=8883, ftps_port=990, ca_cert_path=ca)
    demo = demo_settings(printer, "http://127.0.0.1:7912", tmp_path / "data")  # type: ignore[arg-type]
    assert demo.demo and demo.server.host == "127.0.0.1"
    assert demo.seed_sources == {DEMO_PRINTER: "the demo"}
    assert not load_settings(None, env={}).demo
