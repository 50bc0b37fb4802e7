"""``layerwise serve``: run the web app and one task per configured printer.

With nothing configured at all (no printers, no Spoolman) it runs the demo
instead, so a first ``layerwise serve`` shows something useful.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.config import ConfigError, Settings, add_config_argument, load_settings
from server.logs import setup_logging

if TYPE_CHECKING:
    from server.runtime import Runtime

log = logging.getLogger(__name__)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--host", help="address to listen on (default from config, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default from config, 7913)")
    parser.add_argument("--data-dir", help="where the database and job files live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)


def overrides_from(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["server.host"] = args.host
    if args.port:
        overrides["server.port"] = args.port
    if args.data_dir:
        overrides["server.data_dir"] = args.data_dir
    return overrides


def load_or_exit(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args.config, os.environ, overrides_from(args))
    except ConfigError as exc:
        print(f"layerwise: invalid configuration:\n{exc}", file=sys.stderr)
        return None


def run_app(settings: Settings, runtime_factory: Callable[[Settings], Runtime] | None = None) -> int:
    import uvicorn

    from server.runtime import Runtime
    from server.web.app import create_app

    runtime = (runtime_factory or Runtime.build)(settings)
    app = create_app(runtime)
    server = settings.server
    scheme = "https" if server.tls_certfile else "http"
    log.info("Layerwise listening on %s://%s:%s", scheme, server.host, server.port)
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        ssl_certfile=str(server.tls_certfile) if server.tls_certfile else None,
        ssl_keyfile=str(server.tls_keyfile) if server.tls_keyfile else None,
        log_config=None,
        access_log=False,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    settings = load_or_exit(args)
    if settings is None:
        return 2
    setup_logging(settings.server.log_level)
    if not settings.printers and not settings.spoolman.url:
        log.warning("nothing is configured: starting the demo (virtual printer + Spoolman stand-in)")
        from server.sim.demo import run_demo

        return run_demo(host=settings.server.host, port=settings.server.port)
    return run_app(settings)
