"""Settings from a TOML file, environment variables and command-line overrides.

Precedence, highest first: explicit overrides (``--host``/``--port``/``--data-dir``),
``LAYERWISE_*`` environment variables, the TOML file, defaults. The environment can
also define one printer on its own (``LAYERWISE_PRINTER_*``) for Docker users who keep
everything in a compose file. ``docs/configuration.md`` is the reference.

Every problem is collected before anything is raised, so one run shows them all,
one line each: ``<key>: <what is wrong>; expected <what would be right>``. The key is
named the way the user wrote it: ``printers[1].access_code`` for the TOML file,
``LAYERWISE_PRINTER_ACCESS_CODE`` for the environment, ``--port`` for the command line.
Access codes are ``SecretStr`` and are never quoted in a message.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from server.logs import LOG_LEVELS, register_secret

CONFIG_ENV = "LAYERWISE_CONFIG"
MAPPINGS_ENV = "LAYERWISE_AMS_MAPPINGS"
TLS_MODES = ("verify", "pin", "insecure")
ACCESS_CODE_LENGTH = 8
MAX_TRAY = 255  # global tray index: ams_id*4+slot, 128..135 for AMS HT, 254/255 external

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_SERIAL = re.compile(r"^[A-Za-z0-9]{1,32}$")
_EXTRA_FIELD_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


def _fault(text: str) -> PydanticCustomError:
    """A validation error whose message is only the fault; the loader appends what is expected."""
    return PydanticCustomError("layerwise", text)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _http_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fault(f"is {_shown(value)}, not a URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fault(f"{value!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise _fault(f"{value!r} has an invalid port") from None
    if parts.password:
        register_secret(parts.password)  # http://user:password@spoolman behind a proxy
    if parts.query or parts.fragment:
        raise _fault(f"{value!r} has a query or fragment")
    return value.strip().rstrip("/")


def _tcp_port(value: Any) -> Any:
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip().isdigit():
        number = int(value)
        if not 1 <= number <= 65535:
            raise _fault(f"is {number}")
        return number
    raise _fault(f"is {_shown(value)}")


def _readable_file(value: Any) -> Any:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise _fault(f"'{path}' does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise _fault(f"'{path}' is not readable")
    return path


class _Section(BaseModel):
    # extra="forbid" backs up the loader's own unknown-key check for code that builds models directly;
    # hide_input_in_errors keeps a wrong access code out of a ValidationError's text and tracebacks.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class ServerConfig(_Section):
    host: str = Field("0.0.0.0", description="an address to listen on, such as 0.0.0.0 or 127.0.0.1")
    port: int = Field(7913, description="a TCP port number 1-65535")
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("layerwise")),
        description="a directory for Layerwise's database (created if missing)",
    )
    log_level: str = Field("INFO", description=f"one of {', '.join(LOG_LEVELS)}")
    tls_certfile: Path | None = Field(
        None, description="a readable PEM certificate file, together with tls_keyfile, to serve HTTPS"
    )
    tls_keyfile: Path | None = Field(
        None, description="a readable PEM private key file, together with tls_certfile, to serve HTTPS"
    )
    base_url: str | None = Field(
        None, description="the http(s) URL the web app is reached at, such as https://layerwise.example.net"
    )

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise _fault("is empty")
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        return _tcp_port(value)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise _fault("is empty")
        if isinstance(value, str | Path):
            path = Path(value).expanduser()
            if path.exists() and not path.is_dir():
                raise _fault(f"'{path}' exists and is not a directory")
            return path
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().upper() not in LOG_LEVELS:
            raise _fault(f"is {_shown(value)}")
        return value.strip().upper()

    @field_validator("tls_certfile", "tls_keyfile", mode="before")
    @classmethod
    def _tls_files(cls, value: Any) -> Any:
        return _readable_file(value)

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, value: Any) -> Any:
        return _http_url(value)


class SpoolmanConfig(_Section):
    url: str | None = Field(None, description="Spoolman's base URL, such as http://spoolman:7912")
    timeout: float = Field(10.0, description="a number of seconds greater than 0")

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        url = _http_url(value)
        # People paste the API root from Spoolman's docs; the client adds it itself.
        if url and url.endswith("/api/v1"):
            url = url.removesuffix("/api/v1")
        return url

    @field_validator("timeout", mode="after")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not value > 0:
            raise _fault(f"is {value}")
        return value


class RfidConfig(_Section):
    extra_field: str = Field(
        "bambu_tray_uuid",
        description="a Spoolman extra field key: lowercase letters, digits and underscores",
    )
    create_spools: bool = Field(False, description="true or false")
    auto_assign: bool = Field(True, description="true or false")

    @field_validator("extra_field", mode="before")
    @classmethod
    def _extra_field(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _EXTRA_FIELD_KEY.match(value):
            raise _fault(f"is {_shown(value)}")
        return value


class PrinterConfig(_Section):
    name: str = Field(description="a unique, non-empty printer name")
    host: str = Field(description="the printer's IP address or host name, without scheme or port")
    serial: str = Field(
        description="the printer's serial number: letters and digits, as on the printer or in Bambu Studio"
    )
    access_code: SecretStr = Field(description="the printer's 8-character LAN access code")
    mqtt_port: int = Field(8883, description="a TCP port number 1-65535 (the printer's MQTT port is 8883)")
    ftps_port: int = Field(990, description="a TCP port number 1-65535 (the printer's FTPS port is 990)")
    tls: Literal["verify", "pin", "insecure"] = Field(
        "verify", description="one of 'verify', 'pin', 'insecure'"
    )
    model: str | None = Field(None, description="a printer model such as X1C, P1S, A1 or H2D")
    ca_file: Path | None = Field(
        None, description="a readable PEM file of extra CA certificates to trust for this printer"
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise _fault("is empty")
            return value.strip()
        return value

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        host = value.strip()
        if not host:
            raise _fault("is empty")
        if "://" in host or "/" in host:
            raise _fault(f"{host!r} looks like a URL")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                raise _fault(f"{host!r} is neither an IP address nor a host name") from None
        return host

    @field_validator("serial", mode="before")
    @classmethod
    def _serial(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            serial = value.strip()
            if not serial:
                raise _fault("is empty")
            if not _SERIAL.match(serial):
                raise _fault(f"{serial!r} has characters other than letters and digits or is too long")
            return serial
        return value

    @field_validator("access_code", mode="before")
    @classmethod
    def _access_code(cls, value: Any) -> Any:
        # Messages here never quote the value: it is a secret even when it is wrong.
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # `access_code = 12345678` without quotes in TOML
        if not isinstance(value, str):
            raise _fault("is not text")
        register_secret(value)
        if len(value) != ACCESS_CODE_LENGTH:
            raise _fault(f"is {len(value)} characters")
        if not value.isascii() or not value.isprintable() or " " in value:
            raise _fault("has characters other than letters, digits and punctuation")
        return value

    @field_validator("mqtt_port", "ftps_port", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        return _tcp_port(value)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().lower() not in TLS_MODES:
            raise _fault(f"is {_shown(value)}")
        return value.strip().lower()

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ca_file", mode="before")
    @classmethod
    def _ca_file(cls, value: Any) -> Any:
        return _readable_file(value)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    spoolman: SpoolmanConfig = Field(default_factory=SpoolmanConfig)
    rfid: RfidConfig = Field(default_factory=RfidConfig)
    printers: tuple[PrinterConfig, ...] = ()
    # printer name -> {global tray index: Spoolman spool id}; seeds slot assignments once.
    seed_mappings: dict[str, dict[int, int]] = Field(default_factory=dict)
    # printer name -> where its seed came from ("printers[0].ams_mappings", "LAYERWISE_AMS_MAPPINGS"), for the log.
    seed_sources: dict[str, str] = Field(default_factory=dict)
    config_file: Path | None = None
    # Problems that do not stop the start (a LAYERWISE_ variable nobody reads): logged once at start.
    warnings: tuple[str, ...] = ()
    # True for `layerwise demo` (a virtual printer and a Spoolman stand-in): pages say so.
    demo: bool = False

    def printer(self, name: str) -> PrinterConfig:
        for printer in self.printers:
            if printer.name == name:
                return printer
        raise KeyError(name)


class ConfigError(Exception):
    """Invalid configuration: ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- where values come from -------------------------------------------------------------------

SECTIONS: dict[str, type[_Section]] = {"server": ServerConfig, "spoolman": SpoolmanConfig, "rfid": RfidConfig}

ENV_SETTINGS: dict[str, tuple[str, str]] = {
    "LAYERWISE_HOST": ("server", "host"),
    "LAYERWISE_PORT": ("server", "port"),
    "LAYERWISE_DATA_DIR": ("server", "data_dir"),
    "LAYERWISE_LOG_LEVEL": ("server", "log_level"),
    "LAYERWISE_TLS_CERTFILE": ("server", "tls_certfile"),
    "LAYERWISE_TLS_KEYFILE": ("server", "tls_keyfile"),
    "LAYERWISE_BASE_URL": ("server", "base_url"),
    "LAYERWISE_SPOOLMAN_URL": ("spoolman", "url"),
    "LAYERWISE_SPOOLMAN_TIMEOUT": ("spoolman", "timeout"),
    "LAYERWISE_RFID_EXTRA_FIELD": ("rfid", "extra_field"),
    "LAYERWISE_RFID_CREATE_SPOOLS": ("rfid", "create_spools"),
    "LAYERWISE_RFID_AUTO_ASSIGN": ("rfid", "auto_assign"),
}
ENV_PRINTER_PREFIX = "LAYERWISE_PRINTER_"
ENV_PRINTER_KEYS = (
    "name", "host", "serial", "access_code", "access_code_file",
    "tls", "model", "mqtt_port", "ftps_port", "ca_file",
)  # fmt: skip
# Keys a [[printers]] entry may carry beyond PrinterConfig's fields; the loader consumes them.
PRINTER_LOADER_KEYS = ("access_code_file", "ams_mappings")
# Prefixes this module owns: an unknown variable under them is a typo, not someone else's setting.
OWNED_ENV_PREFIXES = (ENV_PRINTER_PREFIX, "LAYERWISE_SPOOLMAN_", "LAYERWISE_RFID_")


def env_names() -> list[str]:
    """Every environment variable the loader reads (the docs are tested against this)."""
    printer = [ENV_PRINTER_PREFIX + key.upper() for key in ENV_PRINTER_KEYS]
    return [CONFIG_ENV, *ENV_SETTINGS, *printer, MAPPINGS_ENV]


@dataclass
class _Raw:
    """One model's raw values with the name the user gave each one (for messages)."""

    label: str  # "server", "printers[1]", "LAYERWISE_PRINTER_*"
    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)  # names already given a problem line

    def set(self, name: str, value: Any, key: str) -> None:
        self.values[name] = value
        self.keys[name] = key

    def key(self, name: str) -> str:
        return self.keys.get(name, f"{self.label}.{name}")


class _Problems(list[str]):
    def add(self, key: str, fault: str, expected: str) -> None:
        self.append(f"{key}: {fault}; expected {expected}")


def _unknown_key(problems: _Problems, key: str, name: str, allowed: list[str], noun: str = "key") -> None:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    problems.add(key, f"unknown {noun}{hint}", f"one of {', '.join(allowed)}")


def _allowed(model: type[BaseModel], extra: tuple[str, ...] = ()) -> list[str]:
    return [*model.model_fields, *extra]


# --- reading each source ----------------------------------------------------------------------


def _read_toml(path: Path, key: str, problems: _Problems) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problems.add(key, f"'{path}' does not exist", "a TOML configuration file")
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        problems.add(key, f"cannot read '{path}' ({reason})", "a readable UTF-8 TOML file")
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(str(path), f"TOML syntax error: {exc}", "valid TOML (https://toml.io)")
        return {}


def _toml_sections(data: dict[str, Any], problems: _Problems) -> tuple[dict[str, _Raw], list[_Raw]]:
    sections = {name: _Raw(name) for name in SECTIONS}
    printers: list[_Raw] = []
    for top, value in data.items():
        if top == "printers":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                problems.add(
                    "printers", "is not a list of tables", "[[printers]] entries (with two brackets)"
                )
                continue
            for index, entry in enumerate(value):
                raw = _Raw(f"printers[{index}]")
                allowed = _allowed(PrinterConfig, PRINTER_LOADER_KEYS)
                for name, item in entry.items():
                    if name in allowed:
                        raw.set(name, item, f"printers[{index}].{name}")
                    else:
                        _unknown_key(problems, f"printers[{index}].{name}", name, allowed)
                printers.append(raw)
        elif top in SECTIONS:
            if not isinstance(value, dict):
                problems.add(top, f"is {_shown(value)}", f"a [{top}] table")
                continue
            allowed = _allowed(SECTIONS[top])
            for name, item in value.items():
                if name in allowed:
                    sections[top].set(name, item, f"{top}.{name}")
                else:
                    _unknown_key(problems, f"{top}.{name}", name, allowed)
        else:
            _unknown_key(problems, top, top, [*SECTIONS, "printers"])
    return sections, printers


def _env_printer(env: Mapping[str, str]) -> _Raw | None:
    raw = _Raw(ENV_PRINTER_PREFIX + "*")
    for key in ENV_PRINTER_KEYS:
        name = ENV_PRINTER_PREFIX + key.upper()
        if env.get(name, "") != "":
            raw.set(key, env[name], name)
    if not raw.values:
        return None
    for required in ("host", "serial", "name"):
        raw.keys.setdefault(required, ENV_PRINTER_PREFIX + required.upper())
    if "access_code_file" not in raw.values:
        raw.keys.setdefault("access_code", ENV_PRINTER_PREFIX + "ACCESS_CODE")
    if "name" not in raw.values and "serial" in raw.values:
        # Docker users may set only host, serial and code; the serial is unique and stable.
        raw.set("name", raw.values["serial"], ENV_PRINTER_PREFIX + "SERIAL")
    return raw


def _check_env_names(env: Mapping[str, str], problems: _Problems) -> None:
    known = env_names()
    for name in sorted(env):
        prefix = next((p for p in OWNED_ENV_PREFIXES if name.startswith(p)), None)
        if prefix and name not in known:
            _unknown_key(problems, name, name, [k for k in known if k.startswith(prefix)], "variable")


def env_warnings(env: Mapping[str, str]) -> list[str]:
    """A ``LAYERWISE_`` variable nobody reads is most likely a typo (``LAYERWISE_DATADIR``): one line each.

    Only a warning, unlike the owned prefixes above: other tools may share the ``LAYERWISE_`` prefix.
    """
    known = env_names()
    warnings = []
    for name in sorted(env):
        if name.startswith("LAYERWISE_") and name not in known and not name.startswith(OWNED_ENV_PREFIXES):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            warnings.append(f"{name}: unknown variable{hint}; it is ignored")
    return warnings


def _override_key(section: str, name: str) -> str:
    flag = name if section == "server" else f"{section}_{name}"
    return "--" + flag.replace("_", "-")


def _apply_overrides(sections: dict[str, _Raw], overrides: Mapping[str, Any]) -> None:
    for dotted, value in overrides.items():
        if value is None:  # an argparse option that was not given
            continue
        section, _, name = dotted.rpartition(".")
        section = section or "server"
        if section not in SECTIONS or name not in SECTIONS[section].model_fields:
            raise ValueError(f"unknown settings override {dotted!r}")  # a programming error, not the user's
        sections[section].set(name, value, _override_key(section, name))


def _resolve_access_code_file(raw: _Raw, problems: _Problems) -> None:
    if "access_code_file" not in raw.values:
        return
    key = raw.key("access_code_file")
    path = Path(str(raw.values.pop("access_code_file"))).expanduser()
    if "access_code" in raw.values:
        problems.add(key, f"is set together with {raw.key('access_code')}", "only one of the two")
        return
    expected = "a readable file holding the printer's 8-character access code"
    raw.reported.add("access_code")  # a missing code is this key's problem, not a second line
    try:
        code = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        problems.add(key, f"'{path}' does not exist", expected)
        return
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(key, f"cannot read '{path}' ({getattr(exc, 'strerror', None) or exc})", expected)
        return
    raw.reported.discard("access_code")
    raw.set("access_code", code, f"{key} ('{path}')")


# --- AMS mappings -----------------------------------------------------------------------------

MAPPING_EXPECTED = (
    "TRAY:SPOOL pairs separated by commas, TRAY a global tray index 0-255"
    " and SPOOL a positive Spoolman spool id"
)


def parse_mappings(text: str) -> tuple[dict[int, int], list[str]]:
    """``"0:12, 1:13"`` -> ``({0: 12, 1: 13}, [])``; faults name the element (1-based)."""
    mapping: dict[int, int] = {}
    faults: list[str] = []
    for position, element in enumerate(text.split(","), start=1):
        element = element.strip()
        if not element and position == len(text.split(",")) and position > 1:
            continue  # a trailing comma is harmless
        tray_text, colon, spool_text = element.partition(":")
        fault = _mapping_fault(tray_text.strip(), colon, spool_text.strip())
        if fault:
            faults.append(f"element {position} {element!r} {fault}")
            continue
        tray, spool = int(tray_text), int(spool_text)
        if tray in mapping:
            faults.append(f"element {position} {element!r} repeats tray {tray}")
            continue
        mapping[tray] = spool
    return mapping, faults


def _mapping_fault(tray: str, colon: str, spool: str) -> str | None:
    if not colon:
        return "is not TRAY:SPOOL"
    if not tray.isdigit() or int(tray) > MAX_TRAY:
        return "has a tray that is not 0-255"
    if not spool.isdigit() or int(spool) < 1:
        return "has a spool id that is not a positive integer"
    return None


def _toml_mappings(value: Any, key: str, problems: _Problems) -> dict[int, int]:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        text = ",".join(f"{tray}:{spool}" for tray, spool in value.items())
    else:
        expected = 'a table such as { "0" = 12, "1" = 13 } or a string "0:12,1:13"'
        problems.add(key, f"is {_shown(value)}", expected)
        return {}
    mapping, faults = parse_mappings(text)
    for fault in faults:
        problems.add(key, fault, MAPPING_EXPECTED)
    return mapping


# --- validation -------------------------------------------------------------------------------


def _validate(model: type[BaseModel], raw: _Raw, problems: _Problems) -> Any:
    try:
        return model.model_validate(raw.values)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            if name in raw.reported:
                continue
            expected = model.model_fields[name].description if name in model.model_fields else "a valid value"
            if error["type"] == "layerwise":
                fault = error["msg"]
            elif error["type"] == "missing":
                fault = "is missing"
            elif name == "access_code":
                fault = "is not valid"  # never echo a secret
            else:
                fault = f"is {_shown(error['input'])}"
            problems.add(raw.key(name), fault, expected or "a valid value")
        return None


def _check_unique(printers: list[tuple[_Raw, PrinterConfig]], attribute: str, problems: _Problems) -> None:
    seen: dict[str, _Raw] = {}
    for raw, printer in printers:
        value = getattr(printer, attribute)
        if value in seen:
            problems.add(
                raw.key(attribute),
                f"{value!r} is already used by {seen[value].label}",
                f"a {attribute} that no other printer has",
            )
        else:
            seen[value] = raw


def _check_tls_pair(server: ServerConfig, raw: _Raw, problems: _Problems) -> None:
    for have, missing in (("tls_certfile", "tls_keyfile"), ("tls_keyfile", "tls_certfile")):
        if getattr(server, have) is not None and getattr(server, missing) is None:
            fault = f"is missing while {raw.key(have)} is set"
            problems.add(raw.key(missing), fault, "both files or neither")


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, merge and validate; raise ``ConfigError`` listing every problem at once.

    ``overrides`` takes ``server`` field names (``host``, ``port``, ``data_dir``, ...) or
    dotted names (``spoolman.url``); ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    problems = _Problems()
    file_key = "--config"
    if config_path is None and env.get(CONFIG_ENV):
        config_path, file_key = Path(env[CONFIG_ENV]), CONFIG_ENV
    data = _read_toml(Path(config_path).expanduser(), file_key, problems) if config_path else {}
    sections, printer_raws = _toml_sections(data, problems)

    _check_env_names(env, problems)
    for name, (section, key) in ENV_SETTINGS.items():
        if env.get(name, "") != "":
            sections[section].set(key, env[name], name)
    _apply_overrides(sections, overrides or {})

    env_printer = _env_printer(env)
    if env_printer:
        printer_raws.append(env_printer)

    mappings_by_raw: list[tuple[_Raw, dict[int, int], str]] = []  # (printer, mapping, where it was set)
    for raw in printer_raws:
        if "ams_mappings" in raw.values:
            value = raw.values.pop("ams_mappings")
            key = raw.key("ams_mappings")
            mappings_by_raw.append((raw, _toml_mappings(value, key, problems), key))
        _resolve_access_code_file(raw, problems)
    if env.get(MAPPINGS_ENV, "").strip():
        target = env_printer or (printer_raws[0] if len(printer_raws) == 1 else None)
        mapping, faults = parse_mappings(env[MAPPINGS_ENV])
        for fault in faults:
            problems.add(MAPPINGS_ENV, fault, MAPPING_EXPECTED)
        if target is None:
            problems.add(
                MAPPINGS_ENV,
                f"is set but {len(printer_raws)} printers are configured",
                "exactly one printer, or the LAYERWISE_PRINTER_* printer, to apply it to",
            )
        else:
            mappings_by_raw.append((target, mapping, MAPPINGS_ENV))

    validated = {name: _validate(model, sections[name], problems) for name, model in SECTIONS.items()}
    printers = [(raw, _validate(PrinterConfig, raw, problems)) for raw in printer_raws]
    valid_printers = [(raw, printer) for raw, printer in printers if printer is not None]
    _check_unique(valid_printers, "name", problems)
    _check_unique(valid_printers, "serial", problems)
    if validated["server"] is not None:
        _check_tls_pair(validated["server"], sections["server"], problems)
    if problems:
        raise ConfigError(list(problems))

    seed: dict[str, dict[int, int]] = {}
    seed_sources: dict[str, list[str]] = {}
    for raw, mapping, source in mappings_by_raw:
        printer = next(p for r, p in printers if r is raw)
        if mapping:
            seed.setdefault(printer.name, {}).update(mapping)
            seed_sources.setdefault(printer.name, []).append(source)
    return Settings(
        **validated,
        printers=tuple(printer for _, printer in printers),
        seed_mappings=seed,
        seed_sources={name: " and ".join(sources) for name, sources in seed_sources.items()},
        config_file=Path(config_path) if config_path else None,
        warnings=tuple(env_warnings(env)),
    )


# --- command line -----------------------------------------------------------------------------


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else environment variables only)",
    )


def load_settings_or_exit(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    exit: Callable[[int], NoReturn] = sys.exit,
) -> Settings:
    """``load_settings`` for a subcommand: on ``ConfigError`` print the lines to stderr, exit 2."""
    try:
        return load_settings(config_path, env=env, overrides=overrides)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        exit(2)
