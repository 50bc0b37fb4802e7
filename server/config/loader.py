"""``load_settings``: read every source, merge by precedence, validate, and report every problem at once."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from server.config.mappings import MAPPING_EXPECTED, parse_mappings, toml_mappings
from server.config.models import PrinterConfig, ServerConfig, Settings
from server.config.problems import ConfigError, Problems, Raw, validate
from server.config.sources import (
    CONFIG_ENV,
    MAPPINGS_ENV,
    SECTIONS,
    apply_env,
    apply_overrides,
    check_env_names,
    env_printer,
    env_warnings,
    read_toml,
    resolve_access_code_file,
    resolve_secret_file,
    toml_sections,
)


def _check_unique(printers: list[tuple[Raw, PrinterConfig]], attribute: str, problems: Problems) -> None:
    seen: dict[str, Raw] = {}
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


def _check_tls_pair(server: ServerConfig, raw: Raw, problems: Problems) -> None:
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
    problems = Problems()
    file_key = "--config"
    if config_path is None and env.get(CONFIG_ENV):
        config_path, file_key = Path(env[CONFIG_ENV]), CONFIG_ENV
    data = read_toml(Path(config_path).expanduser(), file_key, problems) if config_path else {}
    sections, printer_raws = toml_sections(data, problems)

    check_env_names(env, problems)
    apply_env(sections, env)
    apply_overrides(sections, overrides or {})

    printer_from_env = env_printer(env)
    if printer_from_env:
        printer_raws.append(printer_from_env)

    mappings_by_raw: list[tuple[Raw, dict[int, int], str]] = []  # (printer, mapping, where it was set)
    for raw in printer_raws:
        if "ams_mappings" in raw.values:
            value = raw.values.pop("ams_mappings")
            key = raw.key("ams_mappings")
            mappings_by_raw.append((raw, toml_mappings(value, key, problems), key))
        resolve_access_code_file(raw, problems)
    if env.get(MAPPINGS_ENV, "").strip():
        target = printer_from_env or (printer_raws[0] if len(printer_raws) == 1 else None)
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

    resolve_secret_file(sections["spoolman"], problems, "api_key", "Spoolman's API key")
    resolve_secret_file(sections["notifications"], problems, "urls", "Apprise URLs, one a line")
    resolve_secret_file(sections["home_assistant"], problems, "password", "the MQTT broker's password")
    resolve_secret_file(sections["server"], problems, "database_url", "the PostgreSQL URL")
    validated = {name: validate(model, sections[name], problems) for name, model in SECTIONS.items()}
    printers = [(raw, validate(PrinterConfig, raw, problems)) for raw in printer_raws]
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
