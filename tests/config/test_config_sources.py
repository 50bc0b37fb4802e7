"""Where settings come from: defaults, TOML, environment, overrides, and how they combine."""

from __future__ import annotations

import argparse
from pathlib import Path

import platformdirs
import pytest

from server.config import (
    ConfigError,
    PrinterConfig,
    Settings,
    add_config_argument,
    load_settings,
    load_settings_or_exit,
)

TOML = """
[server]
host = "127.0.0.1"
port = 8000
log_level = "debug"

[spoolman]
url = "http://spoolman.lan:7912/"
timeout = 5

[rfid]
create_spools = true

[[printers]]
name = "Workshop X1C"
host = "192.168.1.20"
serial = "00M09A350100001"
access_code = "12345678"
tls = "pin"
model = "X1C"
ams_mappings = { "0" = 12, "5" = 13 }

[[printers]]
name = "Garage A1"
host = "a1.lan"
serial = "03919A3B0100002"
access_code = 87654321
mqtt_port = 18883
ftps_port = "1990"
"""


def write(tmp_path: Path, text: str = TOML) -> Path:
    path = tmp_path / "layerwise.toml"
    path.write_text(text)
    return path


def test_defaults_with_nothing_configured() -> None:
    settings = load_settings(None, env={})
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 7913
    assert settings.server.data_dir == Path(platformdirs.user_data_dir("layerwise"))
    assert settings.server.log_level == "INFO"
    assert settings.spoolman.url is None and settings.spoolman.timeout == 10.0
    assert settings.rfid.extra_field == "bambu_tray_uuid"
    assert settings.printers == () and settings.seed_mappings == {}


def test_toml_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), env={})
    assert (settings.server.host, settings.server.port, settings.server.log_level) == ("127.0.0.1", 8000, "DEBUG")
    assert settings.spoolman.url == "http://spoolman.lan:7912"
    assert settings.spoolman.timeout == 5.0
    assert settings.rfid.create_spools is True
    x1c, a1 = settings.printers
    assert (x1c.name, x1c.tls, x1c.model, x1c.mqtt_port, x1c.ftps_port) == ("Workshop X1C", "pin", "X1C", 8883, 990)
    assert (a1.mqtt_port, a1.ftps_port, a1.tls) == (18883, 1990, "verify")
    assert a1.access_code.get_secret_value() == "87654321"  # an unquoted number in TOML still works
    assert settings.seed_mappings == {"Workshop X1C": {0: 12, 5: 13}}
    assert settings.config_file == tmp_path / "layerwise.toml"
    assert settings.printer("Garage A1") is a1


def test_config_path_from_environment(tmp_path: Path) -> None:
    settings = load_settings(None, env={"LAYERWISE_CONFIG": str(write(tmp_path))})
    assert len(settings.printers) == 2


def test_precedence_overrides_then_environment_then_file(tmp_path: Path) -> None:
    env = {"LAYERWISE_PORT": "9000", "LAYERWISE_HOST": "::", "LAYERWISE_SPOOLMAN_URL": "https://sm.example"}
    settings = load_settings(write(tmp_path), env=env, overrides={"server.port": 9100, "data_dir": str(tmp_path)})
    assert settings.server.port == 9100
    assert settings.server.host == "::"
    assert settings.server.data_dir == tmp_path
    assert settings.spoolman.url == "https://sm.example"
    assert settings.server.log_level == "DEBUG"  # from the file, untouched


def test_none_overrides_and_empty_variables_are_ignored(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), env={"LAYERWISE_PORT": ""}, overrides={"port": None})
    assert settings.server.port == 8000


def test_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown settings override"):
        load_settings(None, env={}, overrides={"server.nope": 1})


DOCKER_ENV = {
    "LAYERWISE_DATA_DIR": "/data",
    "LAYERWISE_SPOOLMAN_URL": "http://spoolman:7912/api/v1/",
    "LAYERWISE_PRINTER_NAME": "P1S",
    "LAYERWISE_PRINTER_HOST": "10.0.0.5",
    "LAYERWISE_PRINTER_SERIAL": "01P00A123456789",
    "LAYERWISE_PRINTER_ACCESS_CODE": "abcd1234",
    "LAYERWISE_PRINTER_TLS": "INSECURE",
    "LAYERWISE_AMS_MAPPINGS": " 0:123, 1:456 ,254:7,",
    "LAYERWISE_DEMO_SOMETHING": "another module's variable is not our business",
}


def test_one_printer_from_environment_alone() -> None:
    settings = load_settings(None, env=DOCKER_ENV)
    assert settings.server.data_dir == Path("/data")
    assert settings.spoolman.url == "http://spoolman:7912"  # the API root is the client's business
    (printer,) = settings.printers
    assert (printer.name, printer.host, printer.serial, printer.tls) == (
        "P1S",
        "10.0.0.5",
        "01P00A123456789",
        "insecure",
    )
    assert printer.access_code.get_secret_value() == "abcd1234"
    assert settings.seed_mappings == {"P1S": {0: 123, 1: 456, 254: 7}}


def test_environment_printer_is_added_to_the_file_printers(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), env=DOCKER_ENV)
    assert [p.name for p in settings.printers] == ["Workshop X1C", "Garage A1", "P1S"]
    assert settings.seed_mappings == {"Workshop X1C": {0: 12, 5: 13}, "P1S": {0: 123, 1: 456, 254: 7}}


def test_environment_printer_name_defaults_to_serial() -> None:
    env = {k: v for k, v in DOCKER_ENV.items() if k != "LAYERWISE_PRINTER_NAME"}
    assert load_settings(None, env=env).printers[0].name == "01P00A123456789"


def test_mappings_apply_to_the_only_file_printer(tmp_path: Path) -> None:
    toml = TOML.split('[[printers]]\nname = "Garage A1"')[0].replace('ams_mappings = { "0" = 12, "5" = 13 }', "")
    settings = load_settings(write(tmp_path, toml), env={"LAYERWISE_AMS_MAPPINGS": "2:9"})
    assert settings.seed_mappings == {"Workshop X1C": {2: 9}}


def test_access_code_file_for_docker_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "access_code"
    secret.write_text("s3cr3t!x\n")
    env = {k: v for k, v in DOCKER_ENV.items() if k != "LAYERWISE_PRINTER_ACCESS_CODE"}
    env["LAYERWISE_PRINTER_ACCESS_CODE_FILE"] = str(secret)
    assert load_settings(None, env=env).printers[0].access_code.get_secret_value() == "s3cr3t!x"


def test_access_code_never_shown(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), env={})
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.printers[0])):
        assert "12345678" not in text and "87654321" not in text


def test_models_are_frozen_and_validate_when_built_directly(tmp_path: Path) -> None:
    printer = PrinterConfig(name="v", host="127.0.0.1", serial="SIM0001", access_code="12345678")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="frozen"):
        printer.name = "w"  # type: ignore[misc]
    with pytest.raises(ValueError, match="is 9 characters") as caught:
        PrinterConfig(name="v", host="127.0.0.1", serial="SIM0001", access_code="Wq3!Wq3!x")  # type: ignore[arg-type]
    assert "Wq3!Wq3!x" not in str(caught.value)
    assert Settings(printers=(printer,)).printers[0].tls == "verify"


def test_example_file_in_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "layerwise.example.toml"
    settings = load_settings(example, env={})
    assert settings.printers and settings.spoolman.url


def test_config_argument_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_config_argument(parser)
    args = parser.parse_args(["--config", str(write(tmp_path, '[server]\nport = "x"\n'))])
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise SystemExit(code)

    with pytest.raises(SystemExit):
        load_settings_or_exit(args.config, env={}, exit=fake_exit)  # type: ignore[arg-type]
    assert codes == [2]
    assert capsys.readouterr().err == "server.port: is 'x'; expected a TCP port number 1-65535\n"


def test_config_error_lists_problems() -> None:
    error = ConfigError(["a: b; expected c", "d: e; expected f"])
    assert str(error) == "a: b; expected c\nd: e; expected f"


def test_every_environment_variable_is_documented() -> None:
    from server.config import env_names

    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert [name for name in env_names() if f"`{name}`" not in docs] == []
