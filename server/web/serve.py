"""``layerwise serve``: run the web app and one task per configured printer.

With no configuration at all (no file, no ``LAYERWISE_`` variable, no ``--data-dir``) it runs
the demo instead, so a first ``layerwise serve`` shows something useful. Any configuration, even
one without printers, runs as configured.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from server.config import ConfigError, Settings, add_config_argument, load_settings
from server.logs import setup_logging

if TYPE_CHECKING:
    from server.https.service import LocalHttps
    from server.runtime import Runtime

log = logging.getLogger(__name__)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--host", help="address to listen on (default from config, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default from config, 7913)")
    parser.add_argument("--https-port", type=int,
                        help="port of Layerwise's own HTTPS for phones (default from config, 7914; 0 turns it off)")
    parser.add_argument("--data-dir", help="where the database and job files live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)


def overrides_from(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["server.host"] = args.host
    if args.port:
        overrides["server.port"] = args.port
    if getattr(args, "https_port", None) is not None:
        overrides["server.https_port"] = args.https_port
    if args.data_dir:
        overrides["server.data_dir"] = args.data_dir
    return overrides


def load_or_exit(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args.config, os.environ, overrides_from(args))
    except ConfigError as exc:
        print(f"layerwise: invalid configuration:\n{exc}", file=sys.stderr)
        return None


NO_PRINTERS = ("no printers configured: add a [[printers]] section (name, host, serial, access_code) to the "
               "configuration file and restart Layerwise; see docs/configuration.md")


# Where and how loudly to run, like --host/--port: not a configuration of what to run.
RUN_ONLY_VARIABLES = ("LAYERWISE_HOST", "LAYERWISE_PORT", "LAYERWISE_HTTPS_PORT", "LAYERWISE_LOG_LEVEL")


def nothing_configured(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> bool:
    """No configuration at all: no file, no --data-dir, no LAYERWISE_ variable beyond host, port and log
    level. Only then the demo runs; any configuration, even one with no printers, is the user's own and is
    never swapped for the demo."""
    if settings.config_file is not None or getattr(args, "data_dir", None):
        return False
    return not any(name.startswith("LAYERWISE_") and name not in RUN_ONLY_VARIABLES and value != ""
                   for name, value in env.items())


def run_app(settings: Settings, runtime_factory: Callable[[Settings], Runtime] | None = None) -> int:
    from server.datadir import lock_data_dir
    from server.listen import bind_listener, display_url
    from server.runtime import Runtime
    from server.web import listeners
    from server.web.app import create_app

    server = settings.server
    # Data directory first (a second instance is named as such), then the port: both before any printer.
    data_lock = lock_data_dir(server.data_dir)
    try:
        sock = bind_listener(server.host, server.port)
        local = _local_https(settings)
        runtime = (runtime_factory or Runtime.build)(settings)
        app = create_app(runtime)
        scheme = "https" if server.tls_certfile else "http"
        where = "" if server.host in ("127.0.0.1", "::1", "localhost") else f" (listening on {server.host})"
        log.info("Layerwise: open %s%s", display_url(scheme, server.host, server.port), where)
        if local:
            log.info("Layerwise: HTTPS for phones at %s (a phone's first visit over HTTP shows how to set it up)",
                     display_url("https", server.host, local[0].port))
        tls = (str(server.tls_certfile), str(server.tls_keyfile)) if server.tls_certfile else None
        listeners.serve(app, sock, tls=tls, local=local)
    finally:
        data_lock.release()
    return 0


def local_https_port(settings: Settings) -> int:
    """The port of Layerwise's own HTTPS, or 0: none when it is off, or when the user's own certificate or a
    reverse proxy (an https base_url) already provides HTTPS; those take precedence."""
    server = settings.server
    if server.tls_certfile or (server.base_url or "").startswith("https://"):
        return 0
    return server.https_port


def _local_https(settings: Settings) -> tuple[LocalHttps, socket.socket] | None:
    from server.https.service import LocalHttps
    from server.https.store import tls_files
    from server.listen import PortUnavailable, bind_listener

    port = local_https_port(settings)
    if not port:
        return None
    try:
        sock = bind_listener(settings.server.host, port)
    except PortUnavailable as exc:  # HTTP still works; phones just get no camera until this is fixed
        log.warning("no HTTPS for phones: %s (LAYERWISE_HTTPS_PORT / [server] https_port; 0 turns it off)", exc)
        return None
    local = LocalHttps(tls_files(settings.server.data_dir), port, settings.server.base_url)
    local.refresh()
    return local, sock


def run(args: argparse.Namespace) -> int:
    settings = load_or_exit(args)
    if settings is None:
        return 2
    setup_logging(settings.server.log_level)
    for warning in settings.warnings:
        log.warning("%s", warning)
    if nothing_configured(settings, args, os.environ):
        log.warning("nothing is configured: starting the demo (virtual printer + Spoolman stand-in)")
        from server.sim.demo import run_demo

        # The demo is for this machine's browser: loopback unless --host says otherwise.
        return run_demo(host=args.host or os.environ.get("LAYERWISE_HOST") or "127.0.0.1", port=settings.server.port)
    if not settings.printers:
        log.warning(NO_PRINTERS)
    return run_app(settings)
