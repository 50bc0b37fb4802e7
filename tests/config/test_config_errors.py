"""Every kind of configuration problem, one message each: key, fault, what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_settings

PRINTER = """
[[printers]]
name = "Workshop X1C"
host = "192.168.1.20"
serial = "00M09A350100001"
access_code = "12345678"
"""


def problems(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None) -> list[str]:
    path = None
    if toml is not None:
        path = tmp_path / "layerwise.toml"
        path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env or {})
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_unknown_key_names_it_suggests_the_right_one_and_lists_the_allowed(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER.replace("access_code", "acess_code")) == [
        "printers[0].acess_code: unknown key (did you mean 'access_code'?); expected one of name, host, "
        "serial, access_code, mqtt_port, ftps_port, tls, model, ca_file, access_code_file, ams_mappings",
        "printers[0].access_code: is missing; expected the printer's 8-character LAN access code",
    ]


def test_unknown_table_and_server_key(tmp_path: Path) -> None:
    assert problems(tmp_path, '[spoolmann]\nurl = "http://x"\n[server]\nprot = 1\n') == [
        "spoolmann: unknown key (did you mean 'spoolman'?); "
        "expected one of server, spoolman, rfid, auth, notifications, home_assistant, printers",
        "server.prot: unknown key (did you mean 'port'?); expected one of host, port, https_port, data_dir, log_level, "
        "tls_certfile, tls_keyfile, base_url, allowed_hosts, database_url, database_url_file",
    ]


def test_unknown_environment_variable_in_an_owned_prefix(tmp_path: Path) -> None:
    assert problems(tmp_path, env={"LAYERWISE_SPOOLMAN_ULR": "http://x"}) == [
        "LAYERWISE_SPOOLMAN_ULR: unknown variable (did you mean 'LAYERWISE_SPOOLMAN_URL'?); "
        "expected one of LAYERWISE_SPOOLMAN_URL, LAYERWISE_SPOOLMAN_TIMEOUT, LAYERWISE_SPOOLMAN_API_KEY, "
        "LAYERWISE_SPOOLMAN_API_KEY_FILE"
    ]


def test_printers_written_as_a_single_table(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER.replace("[[printers]]", "[printers]")) == [
        "printers: is not a list of tables; expected [[printers]] entries (with two brackets)"
    ]


@pytest.mark.parametrize(("code", "fault"), [("123456", "is 6 characters"), ("123456789", "is 9 characters")])
def test_access_code_not_8_characters(tmp_path: Path, code: str, fault: str) -> None:
    lines = problems(tmp_path, PRINTER.replace("12345678", code))
    assert lines == [f"printers[0].access_code: {fault}; expected the printer's 8-character LAN access code"]
    assert code not in "\n".join(lines)


def test_access_code_with_a_space(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER.replace("12345678", "1234 678")) == [
        "printers[0].access_code: has characters other than letters, digits and punctuation; "
        "expected the printer's 8-character LAN access code"
    ]


SERIAL_EXPECTED = "expected the printer's serial number: letters and digits, as on the printer or in Bambu Studio"


def test_serial_empty(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER.replace("00M09A350100001", "")) == [
        f"printers[0].serial: is empty; {SERIAL_EXPECTED}"
    ]


def test_serial_with_odd_characters(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER.replace("00M09A350100001", "00M09A-3501/01")) == [
        f"printers[0].serial: '00M09A-3501/01' has characters other than letters and digits or is too long; "
        f"{SERIAL_EXPECTED}"
    ]


HOST_EXPECTED = "expected the printer's IP address or host name, without scheme or port"


@pytest.mark.parametrize(
    ("host", "fault"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("mqtts://192.168.1.20", "'mqtts://192.168.1.20' looks like a URL"),
        ("printer.local:8883", "'printer.local:8883' is neither an IP address nor a host name"),
    ],
)
def test_host(tmp_path: Path, host: str, fault: str) -> None:
    assert problems(tmp_path, PRINTER.replace("192.168.1.20", host)) == [f"printers[0].host: {fault}; {HOST_EXPECTED}"]


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("70000", "70000"), ('"mqtt"', "'mqtt'")])
def test_printer_port_out_of_range(tmp_path: Path, value: str, shown: str) -> None:
    assert problems(tmp_path, PRINTER + f"mqtt_port = {value}\n") == [
        f"printers[0].mqtt_port: is {shown}; expected a TCP port number 1-65535 (the printer's MQTT port is 8883)"
    ]


def test_server_port_from_the_environment(tmp_path: Path) -> None:
    assert problems(tmp_path, env={"LAYERWISE_PORT": "99999"}) == [
        "LAYERWISE_PORT: is 99999; expected a TCP port number 1-65535"
    ]


def test_server_port_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={}, overrides={"server.port": 0})
    assert caught.value.problems == ["--port: is 0; expected a TCP port number 1-65535"]


def test_tls_not_one_of_the_three(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER + 'tls = "strict"\n') == [
        "printers[0].tls: is 'strict'; expected one of 'verify', 'pin', 'insecure'"
    ]


ENV_PRINTER = {
    "LAYERWISE_PRINTER_NAME": "P1S",
    "LAYERWISE_PRINTER_HOST": "10.0.0.5",
    "LAYERWISE_PRINTER_SERIAL": "01P00A123456789",
    "LAYERWISE_PRINTER_ACCESS_CODE": "abcd1234",
}
MAPPING_EXPECTED = (
    "expected TRAY:SPOOL pairs separated by commas, TRAY a global tray index 0-255 "
    "and SPOOL a positive Spoolman spool id"
)


def test_tls_from_the_environment(tmp_path: Path) -> None:
    assert problems(tmp_path, env={**ENV_PRINTER, "LAYERWISE_PRINTER_TLS": "off"}) == [
        "LAYERWISE_PRINTER_TLS: is 'off'; expected one of 'verify', 'pin', 'insecure'"
    ]


def test_ams_mappings_unparsable_names_each_element(tmp_path: Path) -> None:
    env = {**ENV_PRINTER, "LAYERWISE_AMS_MAPPINGS": "0:12,1-13,300:4,2:0,3:x,0:5"}
    assert problems(tmp_path, env=env) == [
        f"LAYERWISE_AMS_MAPPINGS: element 2 '1-13' is not TRAY:SPOOL; {MAPPING_EXPECTED}",
        f"LAYERWISE_AMS_MAPPINGS: element 3 '300:4' has a tray that is not 0-255; {MAPPING_EXPECTED}",
        f"LAYERWISE_AMS_MAPPINGS: element 4 '2:0' has a spool id that is not a positive integer; {MAPPING_EXPECTED}",
        f"LAYERWISE_AMS_MAPPINGS: element 5 '3:x' has a spool id that is not a positive integer; {MAPPING_EXPECTED}",
        f"LAYERWISE_AMS_MAPPINGS: element 6 '0:5' repeats tray 0; {MAPPING_EXPECTED}",
    ]


def test_ams_mappings_without_a_printer_to_apply_them_to(tmp_path: Path) -> None:
    toml = PRINTER + PRINTER.replace("Workshop X1C", "Garage").replace("00M09A350100001", "00M09A350100002")
    assert problems(tmp_path, toml, env={"LAYERWISE_AMS_MAPPINGS": "0:12"}) == [
        "LAYERWISE_AMS_MAPPINGS: is set but 2 printers are configured; expected exactly one printer, "
        "or the LAYERWISE_PRINTER_* printer, to apply it to"
    ]


def test_ams_mappings_in_toml(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER + 'ams_mappings = { "0" = 12, "x" = 13 }\n') == [
        f"printers[0].ams_mappings: element 2 'x:13' has a tray that is not 0-255; {MAPPING_EXPECTED}"
    ]


def test_duplicate_printer_name(tmp_path: Path) -> None:
    toml = PRINTER + PRINTER.replace("00M09A350100001", "00M09A350100002")
    assert problems(tmp_path, toml) == [
        "printers[1].name: 'Workshop X1C' is already used by printers[0]; expected a name that no other printer has"
    ]


def test_duplicate_name_between_file_and_environment(tmp_path: Path) -> None:
    env = {**ENV_PRINTER, "LAYERWISE_PRINTER_NAME": "Workshop X1C"}
    assert problems(tmp_path, PRINTER, env=env) == [
        "LAYERWISE_PRINTER_NAME: 'Workshop X1C' is already used by printers[0]; "
        "expected a name that no other printer has"
    ]


def test_duplicate_serial(tmp_path: Path) -> None:
    toml = PRINTER + PRINTER.replace("Workshop X1C", "Same printer again")
    assert problems(tmp_path, toml) == [
        "printers[1].serial: '00M09A350100001' is already used by printers[0]; "
        "expected a serial that no other printer has"
    ]


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("spoolman:7912", "'spoolman:7912' is not an http(s) URL"),
        ("ftp://spoolman", "'ftp://spoolman' is not an http(s) URL"),
        ("http://", "'http://' is not an http(s) URL"),
        ("http://spoolman:99999", "'http://spoolman:99999' has an invalid port"),
        ("http://spoolman:7912/?x=1", "'http://spoolman:7912/?x=1' has a query or fragment"),
    ],
)
def test_malformed_spoolman_url(tmp_path: Path, url: str, fault: str) -> None:
    assert problems(tmp_path, env={"LAYERWISE_SPOOLMAN_URL": url}) == [
        f"LAYERWISE_SPOOLMAN_URL: {fault}; expected Spoolman's base URL, such as http://spoolman:7912"
    ]


def test_access_code_file_missing(tmp_path: Path) -> None:
    env = {**ENV_PRINTER, "LAYERWISE_PRINTER_ACCESS_CODE_FILE": str(tmp_path / "nope")}
    del env["LAYERWISE_PRINTER_ACCESS_CODE"]
    assert problems(tmp_path, env=env) == [
        f"LAYERWISE_PRINTER_ACCESS_CODE_FILE: '{tmp_path / 'nope'}' does not exist; "
        "expected a readable file holding the printer's 8-character access code"
    ]


def test_access_code_file_unreadable(tmp_path: Path) -> None:
    # A directory cannot be read as a file, whoever runs the tests (root ignores file modes).
    env = {**ENV_PRINTER, "LAYERWISE_PRINTER_ACCESS_CODE_FILE": str(tmp_path)}
    del env["LAYERWISE_PRINTER_ACCESS_CODE"]
    assert problems(tmp_path, env=env) == [
        f"LAYERWISE_PRINTER_ACCESS_CODE_FILE: cannot read '{tmp_path}' (Is a directory); "
        "expected a readable file holding the printer's 8-character access code"
    ]


def test_access_code_file_with_a_wrong_code_names_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "code"
    secret.write_text("1234\n")
    env = {**ENV_PRINTER, "LAYERWISE_PRINTER_ACCESS_CODE_FILE": str(secret)}
    del env["LAYERWISE_PRINTER_ACCESS_CODE"]
    assert problems(tmp_path, env=env) == [
        f"LAYERWISE_PRINTER_ACCESS_CODE_FILE ('{secret}'): is 4 characters; "
        "expected the printer's 8-character LAN access code"
    ]


def test_access_code_and_file_both_set(tmp_path: Path) -> None:
    secret = tmp_path / "code"
    secret.write_text("12345678")
    env = {**ENV_PRINTER, "LAYERWISE_PRINTER_ACCESS_CODE_FILE": str(secret)}
    assert problems(tmp_path, env=env) == [
        "LAYERWISE_PRINTER_ACCESS_CODE_FILE: is set together with LAYERWISE_PRINTER_ACCESS_CODE; "
        "expected only one of the two"
    ]


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    lines = problems(tmp_path, "[server]\nport = 7913\nhost = 0.0.0.0\n")
    assert lines == [
        f"{tmp_path / 'layerwise.toml'}: TOML syntax error: Expected newline or end of document after a statement "
        "(at line 3, column 11); "
        "expected valid TOML (https://toml.io)"
    ]


def test_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"LAYERWISE_CONFIG": str(tmp_path / "missing.toml")})
    assert caught.value.problems == [
        f"LAYERWISE_CONFIG: '{tmp_path / 'missing.toml'}' does not exist; expected a TOML configuration file"
    ]


def test_log_level_unknown(tmp_path: Path) -> None:
    assert problems(tmp_path, '[server]\nlog_level = "verbose"\n') == [
        "server.log_level: is 'verbose'; expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]


def test_environment_printer_missing_required_values(tmp_path: Path) -> None:
    assert problems(tmp_path, env={"LAYERWISE_PRINTER_HOST": "10.0.0.5"}) == [
        "LAYERWISE_PRINTER_NAME: is missing; expected a unique, non-empty printer name",
        f"LAYERWISE_PRINTER_SERIAL: is missing; {SERIAL_EXPECTED}",
        "LAYERWISE_PRINTER_ACCESS_CODE: is missing; expected the printer's 8-character LAN access code",
    ]


def test_tls_certificate_without_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    assert problems(tmp_path, f'[server]\ntls_certfile = "{cert}"\n') == [
        "server.tls_keyfile: is missing while server.tls_certfile is set; expected both files or neither"
    ]


def test_ca_file_missing(tmp_path: Path) -> None:
    assert problems(tmp_path, PRINTER + f'ca_file = "{tmp_path / "ca.pem"}"\n') == [
        f"printers[0].ca_file: '{tmp_path / 'ca.pem'}' does not exist or is not a file; "
        "expected a readable PEM file of extra CA certificates to trust for this printer"
    ]


def test_timeout_not_positive(tmp_path: Path) -> None:
    assert problems(tmp_path, env={"LAYERWISE_SPOOLMAN_TIMEOUT": "-1"}) == [
        "LAYERWISE_SPOOLMAN_TIMEOUT: is -1.0; expected a number of seconds greater than 0"
    ]


def test_all_problems_are_collected_before_raising(tmp_path: Path) -> None:
    toml = (
        '[server]\nport = 0\nlog_level = "loud"\n[spoolman]\nurl = "spoolman"\n'
        + PRINTER.replace("12345678", "123")
        + PRINTER.replace("192.168.1.20", "")
    )
    lines = problems(tmp_path, toml, env={"LAYERWISE_AMS_MAPPINGS": "nonsense"})
    keys = [line.split(": ", 1)[0] for line in lines]
    assert keys == [
        "LAYERWISE_AMS_MAPPINGS",
        "LAYERWISE_AMS_MAPPINGS",
        "server.port",
        "server.log_level",
        "spoolman.url",
        "printers[0].access_code",
        "printers[1].host",
    ]
