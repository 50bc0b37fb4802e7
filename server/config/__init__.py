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

The package: ``models`` (what each value must be), ``sources`` (file, environment, overrides, each
value with the key it was written under), ``mappings`` (``TRAY:SPOOL`` seeds), ``problems`` (one line
per problem, ``ConfigError``), ``loader`` (``load_settings``: merge, validate, report). Why this is
hand-written rather than pydantic-settings: docs/CONTRIBUTING.md, "Settings".
"""

from server.config.loader import add_config_argument, load_settings, load_settings_or_exit
from server.config.mappings import MAPPING_EXPECTED, MAX_TRAY, parse_mappings
from server.config.models import (
    ACCESS_CODE_LENGTH,
    TLS_MODES,
    AuthConfig,
    PrinterConfig,
    RfidConfig,
    ServerConfig,
    Settings,
    SpoolmanConfig,
)
from server.config.problems import ConfigError
from server.config.sources import (
    CONFIG_ENV,
    ENV_PRINTER_KEYS,
    ENV_PRINTER_PREFIX,
    ENV_SETTINGS,
    MAPPINGS_ENV,
    OWNED_ENV_PREFIXES,
    PRINTER_LOADER_KEYS,
    SECTIONS,
    env_names,
    env_warnings,
)

__all__ = [
    "ACCESS_CODE_LENGTH",
    "CONFIG_ENV",
    "ENV_PRINTER_KEYS",
    "ENV_PRINTER_PREFIX",
    "ENV_SETTINGS",
    "MAPPINGS_ENV",
    "MAPPING_EXPECTED",
    "MAX_TRAY",
    "OWNED_ENV_PREFIXES",
    "PRINTER_LOADER_KEYS",
    "SECTIONS",
    "TLS_MODES",
    "AuthConfig",
    "ConfigError",
    "PrinterConfig",
    "RfidConfig",
    "ServerConfig",
    "Settings",
    "SpoolmanConfig",
    "add_config_argument",
    "env_names",
    "env_warnings",
    "load_settings",
    "load_settings_or_exit",
    "parse_mappings",
]
