"""Where values come from: the TOML file, ``LAYERWISE_*`` environment variables, command-line overrides.

Each source yields ``Raw`` values under the name the user gave them; nothing here validates a value,
only keys (an unknown key or variable is a problem line, with a suggestion).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config.models import AuthConfig, PrinterConfig, RfidConfig, Section, ServerConfig, SpoolmanConfig
from server.config.problems import Problems, Raw, allowed_keys, unknown_key
from server.config.reach import HomeAssistantConfig, NotificationsConfig
from server.config.values import shown

CONFIG_ENV = "LAYERWISE_CONFIG"
MAPPINGS_ENV = "LAYERWISE_AMS_MAPPINGS"

SECTIONS: dict[str, type[Section]] = {"server": ServerConfig, "spoolman": SpoolmanConfig, "rfid": RfidConfig,
                                     "auth": AuthConfig, "notifications": NotificationsConfig,
                                     "home_assistant": HomeAssistantConfig}

ENV_SETTINGS: dict[str, tuple[str, str]] = {
    "LAYERWISE_HOST": ("server", "host"),
    "LAYERWISE_PORT": ("server", "port"),
    "LAYERWISE_HTTPS_PORT": ("server", "https_port"),
    "LAYERWISE_DATA_DIR": ("server", "data_dir"),
    "LAYERWISE_LOG_LEVEL": ("server", "log_level"),
    "LAYERWISE_TLS_CERTFILE": ("server", "tls_certfile"),
    "LAYERWISE_TLS_KEYFILE": ("server", "tls_keyfile"),
    "LAYERWISE_BASE_URL": ("server", "base_url"),
    "LAYERWISE_ALLOWED_HOSTS": ("server", "allowed_hosts"),
    "LAYERWISE_DATABASE_URL": ("server", "database_url"),
    "LAYERWISE_DATABASE_URL_FILE": ("server", "database_url_file"),
    "LAYERWISE_SPOOLMAN_URL": ("spoolman", "url"),
    "LAYERWISE_SPOOLMAN_TIMEOUT": ("spoolman", "timeout"),
    "LAYERWISE_SPOOLMAN_API_KEY": ("spoolman", "api_key"),
    "LAYERWISE_SPOOLMAN_API_KEY_FILE": ("spoolman", "api_key_file"),
    "LAYERWISE_RFID_EXTRA_FIELD": ("rfid", "extra_field"),
    "LAYERWISE_RFID_CREATE_SPOOLS": ("rfid", "create_spools"),
    "LAYERWISE_RFID_AUTO_ASSIGN": ("rfid", "auto_assign"),
    "LAYERWISE_AUTH_REQUIRED": ("auth", "required"),
    "LAYERWISE_AUTH_TRUSTED_NETWORKS": ("auth", "trusted_networks"),
    "LAYERWISE_NOTIFICATIONS_URLS": ("notifications", "urls"),
    "LAYERWISE_NOTIFICATIONS_URLS_FILE": ("notifications", "urls_file"),
    "LAYERWISE_NOTIFICATIONS_EVENTS": ("notifications", "events"),
    "LAYERWISE_NOTIFICATIONS_PRINTERS": ("notifications", "printers"),
    "LAYERWISE_NOTIFICATIONS_RUNOUT_WITHIN_LAYERS": ("notifications", "runout_within_layers"),
    "LAYERWISE_NOTIFICATIONS_LOW_STOCK_G": ("notifications", "low_stock_g"),
    "LAYERWISE_NOTIFICATIONS_PRINTER_OFFLINE_MINUTES": ("notifications", "printer_offline_minutes"),
    "LAYERWISE_NOTIFICATIONS_SPOOLMAN_UNREACHABLE_MINUTES": ("notifications", "spoolman_unreachable_minutes"),
    "LAYERWISE_HOME_ASSISTANT_MQTT_URL": ("home_assistant", "mqtt_url"),
    "LAYERWISE_HOME_ASSISTANT_USERNAME": ("home_assistant", "username"),
    "LAYERWISE_HOME_ASSISTANT_PASSWORD": ("home_assistant", "password"),
    "LAYERWISE_HOME_ASSISTANT_PASSWORD_FILE": ("home_assistant", "password_file"),
    "LAYERWISE_HOME_ASSISTANT_CA_FILE": ("home_assistant", "ca_file"),
    "LAYERWISE_HOME_ASSISTANT_TLS_INSECURE": ("home_assistant", "tls_insecure"),
    "LAYERWISE_HOME_ASSISTANT_DISCOVERY_PREFIX": ("home_assistant", "discovery_prefix"),
    "LAYERWISE_HOME_ASSISTANT_TOPIC_PREFIX": ("home_assistant", "topic_prefix"),
}
ENV_PRINTER_PREFIX = "LAYERWISE_PRINTER_"
ENV_PRINTER_KEYS = (
    "name", "host", "serial", "access_code", "access_code_file",
    "tls", "model", "mqtt_port", "ftps_port", "ca_file",
)  # fmt: skip
# Keys a [[printers]] entry may carry beyond PrinterConfig's fields; the loader consumes them.
PRINTER_LOADER_KEYS = ("access_code_file", "ams_mappings")
# The same for the sections: a secret read from a file (Docker secrets).
SECTION_LOADER_KEYS: dict[str, tuple[str, ...]] = {"spoolman": ("api_key_file",), "notifications": ("urls_file",),
                                                  "home_assistant": ("password_file",),
                                                  "server": ("database_url_file",)}
# Prefixes this module owns: an unknown variable under them is a typo, not someone else's setting.
OWNED_ENV_PREFIXES = (ENV_PRINTER_PREFIX, "LAYERWISE_SPOOLMAN_", "LAYERWISE_RFID_", "LAYERWISE_AUTH_",
                      "LAYERWISE_NOTIFICATIONS_", "LAYERWISE_HOME_ASSISTANT_")
# Read by server.instruments, for benchmarks only (not settings, so not in env_names or the docs' list).
BENCHMARK_ENV = ("LAYERWISE_INSTRUMENTS_FILE", "LAYERWISE_PROFILE_FILE")


def env_names() -> list[str]:
    """Every environment variable the loader reads (the docs are tested against this)."""
    printer = [ENV_PRINTER_PREFIX + key.upper() for key in ENV_PRINTER_KEYS]
    return [CONFIG_ENV, *ENV_SETTINGS, *printer, MAPPINGS_ENV]


def read_toml(path: Path, key: str, problems: Problems) -> dict[str, Any]:
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


def toml_sections(data: dict[str, Any], problems: Problems) -> tuple[dict[str, Raw], list[Raw]]:
    sections = {name: Raw(name) for name in SECTIONS}
    printers: list[Raw] = []
    for top, value in data.items():
        if top == "printers":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                problems.add(
                    "printers", "is not a list of tables", "[[printers]] entries (with two brackets)"
                )
                continue
            for index, entry in enumerate(value):
                raw = Raw(f"printers[{index}]")
                allowed = allowed_keys(PrinterConfig, PRINTER_LOADER_KEYS)
                for name, item in entry.items():
                    if name in allowed:
                        raw.set(name, item, f"printers[{index}].{name}")
                    else:
                        unknown_key(problems, f"printers[{index}].{name}", name, allowed)
                printers.append(raw)
        elif top in SECTIONS:
            if not isinstance(value, dict):
                problems.add(top, f"is {shown(value)}", f"a [{top}] table")
                continue
            allowed = allowed_keys(SECTIONS[top], SECTION_LOADER_KEYS.get(top, ()))
            for name, item in value.items():
                if name in allowed:
                    sections[top].set(name, item, f"{top}.{name}")
                else:
                    unknown_key(problems, f"{top}.{name}", name, allowed)
        else:
            unknown_key(problems, top, top, [*SECTIONS, "printers"])
    return sections, printers


def env_printer(env: Mapping[str, str]) -> Raw | None:
    raw = Raw(ENV_PRINTER_PREFIX + "*")
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


def check_env_names(env: Mapping[str, str], problems: Problems) -> None:
    known = env_names()
    for name in sorted(env):
        prefix = next((p for p in OWNED_ENV_PREFIXES if name.startswith(p)), None)
        if prefix and name not in known:
            unknown_key(problems, name, name, [k for k in known if k.startswith(prefix)], "variable")


def env_warnings(env: Mapping[str, str]) -> list[str]:
    """A ``LAYERWISE_`` variable nobody reads is most likely a typo (``LAYERWISE_DATADIR``): one line each.

    Only a warning, unlike the owned prefixes above: other tools may share the ``LAYERWISE_`` prefix.
    """
    known = env_names()
    warnings = []
    for name in sorted(env):
        if (name.startswith("LAYERWISE_") and name not in known and name not in BENCHMARK_ENV
                and not name.startswith(OWNED_ENV_PREFIXES)):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            warnings.append(f"{name}: unknown variable{hint}; it is ignored")
    return warnings


def apply_env(sections: dict[str, Raw], env: Mapping[str, str]) -> None:
    for name, (section, key) in ENV_SETTINGS.items():
        if env.get(name, "") != "":  # an empty variable counts as unset
            sections[section].set(key, env[name], name)


def _override_key(section: str, name: str) -> str:
    flag = name if section == "server" else f"{section}_{name}"
    return "--" + flag.replace("_", "-")


def apply_overrides(sections: dict[str, Raw], overrides: Mapping[str, Any]) -> None:
    for dotted, value in overrides.items():
        if value is None:  # an argparse option that was not given
            continue
        section, _, name = dotted.rpartition(".")
        section = section or "server"
        if section not in SECTIONS or name not in SECTIONS[section].model_fields:
            raise ValueError(f"unknown settings override {dotted!r}")  # a programming error, not the user's
        sections[section].set(name, value, _override_key(section, name))


def resolve_access_code_file(raw: Raw, problems: Problems) -> None:
    resolve_secret_file(raw, problems, "access_code", "the printer's 8-character access code")


def resolve_secret_file(raw: Raw, problems: Problems, field: str, what: str) -> None:
    """``<field>_file``: read the secret from that file (a Docker secret), set it as ``<field>``."""
    file_field = f"{field}_file"
    if file_field not in raw.values:
        return
    key = raw.key(file_field)
    path = Path(str(raw.values.pop(file_field))).expanduser()
    if field in raw.values:
        problems.add(key, f"is set together with {raw.key(field)}", "only one of the two")
        return
    expected = f"a readable file holding {what}"
    raw.reported.add(field)  # a missing secret is this key's problem, not a second line
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        problems.add(key, f"'{path}' does not exist", expected)
        return
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(key, f"cannot read '{path}' ({getattr(exc, 'strerror', None) or exc})", expected)
        return
    raw.reported.discard(field)
    raw.set(field, secret, f"{key} ('{path}')")
