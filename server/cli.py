"""The ``layerwise`` command.

Each subcommand lives in the module that owns it; that module provides
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their subcommand is built, so ``layerwise analyze`` never loads the web app.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from server import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server.web.serve", "run Layerwise against the configured printers and Spoolman"),
    "demo": ("server.sim.demo", "run Layerwise against a virtual printer and a Spoolman stand-in"),
    "simulate": ("server.sim.cli", "run a virtual Bambu Lab printer (MQTT over TLS and implicit FTPS)"),
    "check": ("server.check", "validate the configuration and try each printer and Spoolman"),
    "analyze": ("server.analysis.cli", "per-layer, per-filament usage of a sliced .gcode.3mf or .gcode"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerwise",
        description="Keeps Spoolman in step with what Bambu Lab printers really use, layer by layer.",
    )
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from server.datadir import DataDirInUse
    from server.listen import PortUnavailable

    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    # serve/demo on a data directory another process runs on, or on a port they cannot have
    except (DataDirInUse, PortUnavailable) as err:
        print(f"layerwise: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `layerwise analyze FILE | head`: the reader left; nothing more to say
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not hit the closed pipe again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
