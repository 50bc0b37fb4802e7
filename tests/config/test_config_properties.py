"""Properties of the loader over generated values: the TOML file and the environment are two spellings
of the same settings, and every invalid value is reported under the key as the user wrote it."""

from __future__ import annotations

import json
import re
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import logs
from server.config import ENV_PRINTER_PREFIX, ENV_SETTINGS, ConfigError, Settings, load_settings
from server.logs import LOG_LEVELS

# (section, field) -> the environment variable for it; the TOML key is "section.field".
ENV_NAME = {target: name for name, target in ENV_SETTINGS.items()}
PRINTER_FIELDS = ("name", "host", "serial", "access_code", "tls", "model", "mqtt_port", "ftps_port")
VALID_PRINTER = {"name": "Workshop X1C", "host": "192.168.1.20", "serial": "00M09A350100001", "access_code": "12345678"}
BOOLEAN_WORDS = {True: ("true", "1", "yes", "on", "TRUE"), False: ("false", "0", "no", "off", "False")}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def secrets_kept() -> Iterator[None]:
    """Generated access codes are registered for redaction; forget them so other tests' logs are untouched."""
    before = set(logs._secrets)
    try:
        yield
    finally:
        logs._secrets.clear()
        logs._secrets.update(before)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a TOML basic string when astral characters stay unescaped (TOML has no surrogates).
    return json.dumps(value, ensure_ascii=False)


def toml_text(tables: dict[str, dict[str, Any]], printers: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    for printer in printers:
        lines.append("[[printers]]")
        for key, value in printer.items():
            if key == "ams_mappings":
                pairs = ", ".join(f'"{tray}" = {spool}' for tray, spool in value.items())
                lines.append(f"ams_mappings = {{ {pairs} }}")
            else:
                lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def env_text(value: Any) -> str:
    return str(value)


def load_toml(text: str, env: dict[str, str] | None = None) -> Settings:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layerwise.toml"
        path.write_text(text, encoding="utf-8")
        return load_settings(path, env=env or {})


def problems_of(load: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load()
    return caught.value.problems


# --- valid values: both spellings give the same settings ------------------------------------------

ports = st.integers(1, 65535)
cases = st.sampled_from((str.lower, str.upper, str.title))
printable_code = st.text(string.ascii_letters + string.digits + string.punctuation, min_size=8, max_size=8)


# (sections, printer, how the environment spells each boolean)
Configuration = tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, dict[str, str]]]


@st.composite
def valid_configurations(draw: st.DrawFn) -> Configuration:
    """(sections, printer, boolean spellings for the environment) with values every source accepts."""
    server = {
        "host": draw(st.sampled_from(("0.0.0.0", "127.0.0.1", "::", "layerwise.lan"))),
        "port": draw(ports),
        "data_dir": draw(st.sampled_from(("/srv/layerwise", "/data"))),
        "log_level": draw(cases)(draw(st.sampled_from(LOG_LEVELS))),
        "base_url": draw(st.sampled_from(("https://layerwise.example.net", "http://10.0.0.2:7913/"))),
    }
    spoolman = {
        "url": draw(st.sampled_from(("http://spoolman:7912", "https://sm.example/", "http://10.0.0.3:7912/api/v1"))),
        "timeout": draw(st.integers(1, 60_000)) / 100,
    }
    rfid = {
        "extra_field": draw(st.from_regex(r"[a-z0-9_]{1,64}", fullmatch=True)),
        "create_spools": draw(st.booleans()),
        "auto_assign": draw(st.booleans()),
    }
    words = {name: draw(st.sampled_from(BOOLEAN_WORDS[rfid[name]])) for name in ("create_spools", "auto_assign")}
    printer = {
        "name": draw(st.text(string.ascii_letters + string.digits + " -_.", min_size=1, max_size=40)).strip() or "P",
        "host": draw(st.one_of(st.ip_addresses(v=4).map(str), st.sampled_from(("printer.lan", "x1c")))),
        "serial": draw(st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True)),
        "access_code": draw(printable_code),
        "tls": draw(cases)(draw(st.sampled_from(("verify", "pin", "insecure")))),
        "model": draw(st.sampled_from(("X1C", "P1S", "A1", "H2D"))),
        "mqtt_port": draw(ports),
        "ftps_port": draw(ports),
        "ams_mappings": draw(st.dictionaries(st.integers(0, 255), st.integers(1, 10**6), min_size=1, max_size=8)),
    }
    return {"server": server, "spoolman": spoolman, "rfid": rfid}, printer, {"rfid": words}


@SETTINGS
@given(valid_configurations())
def test_the_file_and_the_environment_give_the_same_settings(
    configuration: Configuration,
) -> None:
    sections, printer, words = configuration
    env = {ENV_NAME[(section, key)]: env_text(words.get(section, {}).get(key, value))
           for section, values in sections.items() for key, value in values.items()}
    env |= {ENV_PRINTER_PREFIX + key.upper(): env_text(printer[key]) for key in PRINTER_FIELDS}
    env["LAYERWISE_AMS_MAPPINGS"] = ",".join(f"{tray}:{spool}" for tray, spool in printer["ams_mappings"].items())
    with secrets_kept():
        from_file = load_toml(toml_text(sections, [printer]))
        from_env = load_settings(None, env=env)
    for part in ("server", "spoolman", "rfid", "printers", "seed_mappings"):
        assert getattr(from_file, part) == getattr(from_env, part), part
    assert from_file.printers[0].access_code.get_secret_value() == printer["access_code"]


# --- invalid values: one line, under the key as written, the same fault from either source --------

no_controls = st.characters(blacklist_categories=("Cs", "Cc"))
words_ = st.text(no_controls, min_size=1, max_size=20)
not_a_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536), words_.filter(lambda s: not s.isdigit()))
INVALID: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("server", "port"): not_a_port,
    ("server", "log_level"): words_.filter(lambda s: s.strip().upper() not in LOG_LEVELS),
    ("server", "base_url"): words_.filter(lambda s: "://" not in s),
    ("spoolman", "url"): words_.filter(lambda s: "://" not in s),
    ("spoolman", "timeout"): st.one_of(st.integers(-10**6, 0), st.integers(-10**6, 0).map(lambda n: n / 8)),
    ("rfid", "extra_field"): words_.filter(lambda s: not re.fullmatch(r"[a-z0-9_]{1,64}", s)),
    ("rfid", "create_spools"): st.sampled_from(("maybe", "2", "yess", "enabled")),
    ("printer", "host"): st.sampled_from(("mqtts://10.0.0.5", "10.0.0.5/x", "printer.lan:8883", "a b")),
    ("printer", "serial"): st.from_regex(r"[A-Za-z0-9]{0,6}[-/.:#][A-Za-z0-9]{0,6}", fullmatch=True),
    ("printer", "access_code"): st.text(string.ascii_letters + string.digits, min_size=1, max_size=20).filter(
        lambda s: len(s) != 8
    ),
    ("printer", "tls"): words_.filter(lambda s: s.strip().lower() not in ("verify", "pin", "insecure")),
    ("printer", "mqtt_port"): not_a_port,
    ("printer", "ftps_port"): not_a_port,
}


@SETTINGS
@given(st.sampled_from(sorted(INVALID)).flatmap(lambda target: st.tuples(st.just(target), INVALID[target])))
def test_every_invalid_value_is_reported_under_the_key_as_written(target: tuple[tuple[str, str], Any]) -> None:
    (section, key), value = target
    if section == "printer":
        toml = toml_text({}, [{**VALID_PRINTER, key: value}])
        env = {ENV_PRINTER_PREFIX + name.upper(): v for name, v in VALID_PRINTER.items()}
        env[ENV_PRINTER_PREFIX + key.upper()] = env_text(value)
        toml_key, env_key = f"printers[0].{key}", ENV_PRINTER_PREFIX + key.upper()
    else:
        toml = toml_text({section: {key: value}}, [])
        env = {ENV_NAME[(section, key)]: env_text(value)}
        toml_key, env_key = f"{section}.{key}", ENV_NAME[(section, key)]
    with secrets_kept():
        from_file = problems_of(lambda: load_toml(toml))
        from_env = problems_of(lambda: load_settings(None, env=env))
    assert len(from_file) == 1 and from_file[0].startswith(f"{toml_key}: "), from_file
    assert len(from_env) == 1 and from_env[0].startswith(f"{env_key}: "), from_env
    file_fault, env_fault = from_file[0].removeprefix(toml_key), from_env[0].removeprefix(env_key)
    assert file_fault.split("; expected ")[1] == env_fault.split("; expected ")[1]
    if isinstance(value, str):  # the same text typed in either place is the same fault (a TOML number is typed)
        assert file_fault == env_fault
    if key == "access_code":  # the fault is the length, never the code
        expected = "expected the printer's 8-character LAN access code"
        assert from_file[0] == f"{toml_key}: is {len(value)} characters; {expected}"
