"""The ``layerwise`` command.

Each subcommand lives in the module that owns it; that module provides
``add_arguments(parser)`` and ``run(args) -> int``. Registering one costs nothing:
the table below names its module and help line, and only the module of the command
being run (or asked for ``--help``) is imported, so ``layerwise --help`` imports no
subcommand and ``layerwise analyze`` never loads the web app or the simulator.
What a subcommand module imports at its top is paid by ``layerwise CMD --help``
too: keep heavy imports (numpy, the web app) out of it where they are not needed
to define the arguments (tests/app/test_cli_imports.py checks --help and analyze).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from server import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (~2 ms)
if TYPE_CHECKING:
    import argparse

# name -> (module, one-line help); the module is imported only when its command runs
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server.web.serve", "run Layerwise against the configured printers and Spoolman"),
    "demo": ("server.sim.demo", "run Layerwise against a virtual printer and a Spoolman stand-in"),
    "simulate": ("server.sim.cli", "run a virtual Bambu Lab printer (MQTT over TLS and implicit FTPS)"),
    "check": ("server.check", "validate the configuration and try each printer and Spoolman"),
    "analyze": ("server.analysis.cli", "per-layer, per-filament usage of a sliced .gcode.3mf or .gcode"),
    "user": ("server.auth.cli_user", "add, list or remove the people who may sign in to the web app"),
    "token": ("server.auth.cli_token", "create, list or revoke API tokens (Authorization: Bearer)"),
    "backup": ("server.db.backup", "a consistent copy of the database while Layerwise runs (PostgreSQL: pg_dump)"),
    "export": ("server.billing.export", "the ledger as CSV or JSON (--since DATE)"),
}
# Commands that print and end, leaving no thread running and no exit handler: as a process of their own
# they end without the interpreter's teardown (_exit_now).
QUICK_EXIT = frozenset({"analyze"})
# Commands whose module reads its usual command lines without argparse (``quick_args(argv)``, None for
# anything else): argparse's import and the gettext look-ups its messages make cost `layerwise analyze` ~7 ms.
QUICK_ARGS = frozenset({"analyze"})


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``command`` only (the others show their help line)."""
    import argparse  # here: a command line that quick_args reads needs none of it

    parser = argparse.ArgumentParser(
        prog="layerwise",
        description="Keeps Spoolman in step with what Bambu Lab printers really use, layer by layer.",
    )
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top level's options,
    ``--help`` and ``--version``, take no value)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _quick_args(command: str | None, argv: list[str]) -> object | None:
    """``layerwise CMD ...`` read by CMD's own ``quick_args`` when it is one of the usual forms (the command
    first, then options it knows spelt out in full); None hands it to argparse, which reads every form and
    writes the help and the errors."""
    if command not in QUICK_ARGS or not argv or argv[0] != command:
        return None
    module = importlib.import_module(COMMANDS[command][0])
    args = module.quick_args(argv[1:])
    if args is not None:
        args._run = module.run
    return args


def main(argv: Sequence[str] | None = None) -> int:
    whole_process = argv is None  # the process's own command line (the layerwise script, python -m server)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    args = _quick_args(command, argv)
    if args is None:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
    try:
        code = int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `layerwise analyze FILE | head`: the reader left; nothing more to say
        _quiet_stdout()
        return 0
    except Exception as err:
        if not _refused(err):
            raise
        print(f"layerwise: {err}", file=sys.stderr)
        return 2
    if whole_process and command in QUICK_EXIT:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:  # never returns (typing's NoReturn would cost --help its import)
    """End the process without the interpreter's teardown, which frees every object and module one by one:
    ~5 ms of the ~0.1 s a 6.5 MB `layerwise analyze` takes. What was printed is flushed first."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left (`| head`), as in main()
        _quiet_stdout()
    except OSError:  # e.g. a full disk: the interpreter's own final flush would exit 120 as well
        code = code or 120
    os._exit(code)


def _refused(err: Exception) -> bool:
    """serve/demo on a data directory another process runs on, or on a port they cannot have; a database
    from a newer Layerwise. Imported here, not at the top: server.listen brings uvicorn, which
    `layerwise analyze` has no use for."""
    from server.datadir import DataDirInUse
    from server.db.migrations import SchemaTooNewError
    from server.listen import PortUnavailable

    return isinstance(err, DataDirInUse | PortUnavailable | SchemaTooNewError)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not hit the closed pipe again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
