"""``layerwise check``: validate the configuration, then try each printer and Spoolman.

One line per check on stdout, in configuration order::

    configuration layerwise.toml: ok (2 printers, Spoolman http://spoolman:7912)
    printer "Workshop X1C" MQTT: ok (logged in as bblp, TLS verified)
    printer "Workshop X1C" FTPS: failed: access code refused
    Spoolman http://spoolman:7912: ok (version 0.26.1)

Exit status: 0 when every check passed, 1 when one failed, 2 for an invalid configuration
(its problems on stderr, one per line). The probes belong to their packages
(``server.printer.probe``, ``server.spoolman``); this module only runs and reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.config import ConfigError, PrinterConfig, Settings, add_config_argument, load_settings
from server.config.reach import masked_url
from server.logs import setup_logging

DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class CheckResult:
    subject: str  # 'printer "Workshop X1C" MQTT', 'Spoolman http://...'
    ok: bool
    detail: str = ""

    def line(self) -> str:
        if self.ok:
            return f"{self.subject}: ok ({self.detail})" if self.detail else f"{self.subject}: ok"
        return f"{self.subject}: failed: {self.detail or 'no reason given'}"


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed check: the message, else the kind of error."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text or type(exc).__name__


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a probe whether it is a coroutine function or blocking code."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


async def _timed(subject: str, work: Awaitable[CheckResult], timeout: float) -> CheckResult:
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return CheckResult(subject, False, f"no answer within {timeout:g} s")
    except Exception as exc:  # a probe that raises instead of returning a result still gets its line
        return CheckResult(subject, False, describe_error(exc))


async def _probe_printer(printer: PrinterConfig, settings: Settings, timeout: float) -> list[CheckResult]:
    subjects = (f'printer "{printer.name}" MQTT', f'printer "{printer.name}" FTPS')
    try:
        from server.printer.probe import probe_ftps, probe_mqtt
        from server.printer.tls import PinStore
    except ImportError as exc:
        return [CheckResult(subject, False, f"cannot run the probe ({exc})") for subject in subjects]
    pins = PinStore(settings.server.data_dir)

    async def one(probe: Callable[..., Any]) -> CheckResult:
        result = await _call(probe, printer, pins)
        return CheckResult("", bool(result.ok), str(result.detail))

    results = []
    for subject, probe in zip(subjects, (probe_mqtt, probe_ftps), strict=True):
        result = await _timed(subject, one(probe), timeout)
        results.append(CheckResult(subject, result.ok, result.detail))
    return results


def _version(info: Any) -> str | None:
    version = info.get("version") if isinstance(info, dict) else getattr(info, "version", None)
    return str(version) if version else None


async def _probe_spoolman(settings: Settings, timeout: float) -> CheckResult:
    url = settings.spoolman.url
    if not url:
        return CheckResult("Spoolman", False, "not configured (spoolman.url or LAYERWISE_SPOOLMAN_URL)")
    subject = f"Spoolman {url}"
    try:
        from server.spoolman import SpoolmanClient  # type: ignore[attr-defined]
    except ImportError as exc:
        return CheckResult(subject, False, f"cannot run the probe ({exc})")

    async def info() -> CheckResult:
        client = SpoolmanClient(url, timeout=settings.spoolman.timeout, api_key=settings.spoolman.api_key)
        try:
            result = await _call(client.info)
        finally:
            closing = getattr(client, "aclose", None) or getattr(client, "close", None)
            if closing is not None:
                await _call(closing)
        version = _version(result)
        return CheckResult(subject, True, f"version {version}" if version else "")

    return await _timed(subject, info(), timeout)


async def run_checks(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> list[CheckResult]:
    """Every printer probe and Spoolman, concurrently; results in configuration order."""
    printers = [_probe_printer(printer, settings, timeout) for printer in settings.printers]
    *per_printer, spoolman = await asyncio.gather(*printers, _probe_spoolman(settings, timeout))
    results = [result for results in per_printer for result in results]
    if not settings.printers:
        results.append(CheckResult("printers", False, "none configured ([[printers]] or LAYERWISE_PRINTER_*)"))
    return [*results, spoolman]


def summary(settings: Settings) -> CheckResult:
    count = len(settings.printers)
    parts = [f"{count} printer{'s' if count != 1 else ''}"]
    if settings.spoolman.url:
        key = ", API key set" if settings.spoolman.api_key is not None else ""
        parts.append(f"Spoolman {settings.spoolman.url}{key}")
    if settings.notifications.urls:  # only the schemes: the rest of an Apprise URL holds its tokens
        targets = ", ".join(masked_url(url.get_secret_value()) for url in settings.notifications.urls)
        parts.append(f"notifications to {targets}")
    if settings.home_assistant.mqtt_url:
        parts.append(f"Home Assistant via {settings.home_assistant.shown_url()}")
    url = settings.server.database_url_text()
    if url:
        # sqlalchemy only when needed (the CLI starts fast); renamed: config.reach's masked_url is not this one
        from server.db.engine import masked_url as masked_database_url

        parts.append(f"PostgreSQL {masked_database_url(url)}")  # password masked: shared in bug reports
    where = f" {settings.config_file}" if settings.config_file else " (environment)"
    return CheckResult(f"configuration{where}", True, ", ".join(parts))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on one check after this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show log lines at the configured log level"
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    # Retries and reconnects log warnings; the result lines already say what failed.
    setup_logging(settings.server.log_level if args.verbose else "ERROR")
    print(summary(settings).line(), flush=True)
    results = asyncio.run(run_checks(settings, args.timeout))
    for result in results:
        print(result.line())
    return 0 if all(result.ok for result in results) else 1
