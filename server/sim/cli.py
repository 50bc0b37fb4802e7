"""``layerwise simulate``: run a virtual Bambu Lab printer until interrupted.

It serves MQTT over TLS and implicit FTPS like a printer on the LAN. With ``--file`` it prints that file at
``--layer-seconds`` per layer (``--loop`` to repeat); without it, it waits for ``project_file`` commands from
any client and prints what they name from its storage (put files there over FTPS, as the slicer does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from server.logs import register_secret, setup_logging
from server.sim.printer import AmsUnit, VirtualPrinter
from server.sim.printer.gcode import plan_from_file
from server.sim.printer.model import model_family
from server.sim.printer.printer import MODES

DEFAULT_SERIAL = "01P00A000000001"
DEFAULT_ACCESS_CODE = "12345678"
AMS_KINDS = ("ams", "ams_lite", "ams_2_pro", "ams_ht")
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--serial", default=DEFAULT_SERIAL, help="serial number (the certificate's CN)")
    parser.add_argument("--access-code", default=None, help=f"LAN access code (default {DEFAULT_ACCESS_CODE})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, default=8883, help="MQTT over TLS port (default 8883)")
    parser.add_argument("--ftps-port", type=int, default=990,
                        help="implicit FTPS port (default 990; a free port is used if 990 needs root)")
    parser.add_argument("--model", default="P1S", help="P1P, P1S, A1, A1MINI (deltas) or X1C, X1E, P2S, H2S, H2D")
    parser.add_argument("--ams", default="ams:0",
                        help="AMS units as KIND:ID,... with KIND in ams, ams_lite, ams_2_pro, ams_ht "
                             "(e.g. ams:0,ams:1,ams_ht:128); 'none' for no AMS (default ams:0)")
    parser.add_argument("--file", type=Path, help="a .gcode.3mf (or .gcode) to print")
    parser.add_argument("--plate", type=int, default=1, help="plate of --file to print (default 1)")
    parser.add_argument("--ams-mapping", help="slicer filament -> tray, e.g. 0,1,2,3 (254 = external spool)")
    parser.add_argument("--layer-seconds", type=float, default=2.0, help="seconds per layer (default 2)")
    parser.add_argument("--loop", action="store_true", help="print --file again and again")
    parser.add_argument("--lan", action="store_true",
                        help="start --file like an A1 LAN print: no project_file message")
    parser.add_argument("--mode", choices=MODES, default="lan",
                        help="lan: LAN-only mode, every request answered (default); developer: Developer Mode, "
                             "the same; cloud: cloud mode with authorization control: pushall and get_version "
                             "refused with err_code 84033543, P1-style delta reports, prints carry an https URL; "
                             "silent: firmware that never answers a request")
    parser.add_argument("--state", type=Path, help="start from a recorded full state (a push_status JSON capture)")
    parser.add_argument("--cert-dir", type=Path, help="where the printer's CA and certificate are kept")


def parse_ams(spec: str) -> list[AmsUnit]:
    if spec.strip().lower() in ("", "none"):
        return []
    units = []
    for item in spec.split(","):
        kind, _, ams_id = item.strip().partition(":")
        if kind not in AMS_KINDS or not ams_id.isdigit():
            raise argparse.ArgumentTypeError(f"bad AMS unit {item!r}: use KIND:ID with KIND in {', '.join(AMS_KINDS)}")
        units.append(AmsUnit(int(ams_id), kind=kind))
    return units


def parse_mapping(spec: str | None) -> list[int] | None:
    if not spec:
        return None
    try:
        return [int(part) for part in spec.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad --ams-mapping {spec!r}: use numbers like 0,1,2,3") from error


def load_recorded_state(path: Path) -> dict[str, Any]:
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a JSON object")
    return payload if "print" in payload else {"print": payload}


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    access_code = args.access_code or DEFAULT_ACCESS_CODE
    register_secret(access_code)
    # amqtt and pyftpdlib are chatty at INFO (one line per connection and command).
    for noisy in ("amqtt", "pyftpdlib", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        model_family(args.model)
        ams = parse_ams(args.ams)
        mapping = parse_mapping(args.ams_mapping)
        state = load_recorded_state(args.state) if args.state else None
        if args.file is not None:
            plan_from_file(args.file.read_bytes(), args.plate)  # fail now, not at the first layer
    except (argparse.ArgumentTypeError, OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        print(f"layerwise simulate: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_simulate(args, access_code, ams, mapping, state))
    except asyncio.CancelledError:
        return 0
    except OSError as error:
        print(f"layerwise simulate: {error}", file=sys.stderr)
        return 1
    return 0


async def _start(args: argparse.Namespace, access_code: str, ams: list[AmsUnit]) -> VirtualPrinter:
    ftps_port = args.ftps_port
    while True:
        printer = VirtualPrinter(serial=args.serial, access_code=access_code, model=args.model, host=args.host,
                                 mqtt_port=args.mqtt_port, ftps_port=ftps_port, ams=ams, cert_dir=args.cert_dir,
                                 mode=getattr(args, "mode", "lan"))
        try:
            await printer.start()
            return printer
        except PermissionError:
            await printer.close()
            if ftps_port == 0 or ftps_port >= 1024:
                raise
            log.warning("port %d needs root: using a free port for FTPS instead", ftps_port)
            ftps_port = 0


async def _simulate(args: argparse.Namespace, access_code: str, ams: list[AmsUnit], mapping: list[int] | None,
                    state: dict[str, Any] | None) -> None:
    printer = await _start(args, access_code, ams)
    main = asyncio.current_task()
    if main is not None:
        # SIGTERM (e.g. from a test or a service manager) shuts down as cleanly as Ctrl-C.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        if state is not None:
            printer.load_state(state)
        printer.auto_layer_seconds = args.layer_seconds
        _print_details(printer, args, access_code)
        if args.file is None:
            await asyncio.Event().wait()  # serve until interrupted
        remote_path = f"/cache/{PurePosixPath(args.file.name)}"
        printer.add_file(remote_path, args.file)
        while True:
            while printer.printing:  # a job commanded over MQTT is under way: let it end first
                await asyncio.sleep(args.layer_seconds)
            await printer.run_print(remote_path, layer_seconds=args.layer_seconds, plate=args.plate,
                                    ams_mapping=mapping, announce=not args.lan)
            if not args.loop:
                await asyncio.Event().wait()  # stay up in FINISH so clients can read the end state
            await asyncio.sleep(max(args.layer_seconds * 2, 1.0))
    finally:
        await printer.close()


def _print_details(printer: VirtualPrinter, args: argparse.Namespace, access_code: str) -> None:
    code = "(as given with --access-code)" if args.access_code else access_code
    lines = [
        f"Virtual {printer.model} printer {printer.serial}",
        f"  MQTT over TLS   {printer.host}:{printer.mqtt_port}  user bblp, access code {code}",
        f"  implicit FTPS   {printer.host}:{printer.ftps_port}  (PROT P, TLS session reuse required)",
        f"  CA certificate  {printer.ca_cert_path}  (server certificate CN = {printer.serial})",
        f"  storage         {printer.storage}",
        f"  mode            {printer.mode}" + {
            "lan": " (LAN-only: every request answered)", "developer": " (Developer Mode: every request answered)",
            "cloud": " (authorization control: requests refused with err_code 84033543, deltas only)",
            "silent": " (requests never answered)"}[printer.mode],
    ]
    if args.file is not None:
        lines.append(f"  printing        {args.file.name} at {args.layer_seconds:g} s/layer"
                     f"{' in a loop' if args.loop else ''}")
    else:
        lines.append("  waiting for project_file commands on device/<serial>/request")
    lines += ["", "To connect Layerwise to it, paste this into your layerwise.toml:", *printer_block(printer, args)]
    print("\n".join(lines), flush=True)


def printer_block(printer: VirtualPrinter, args: argparse.Namespace) -> list[str]:
    """A ready-to-paste ``[[printers]]`` entry; the ``ca_file`` makes ``tls = "verify"`` trust this printer."""
    host = "127.0.0.1" if printer.host in ("0.0.0.0", "") else printer.host
    # The code given with --access-code is not echoed (it is redacted from logs too): the user types it in.
    code_line = ('access_code = "........"  # replace with the --access-code you gave' if args.access_code
                 else f'access_code = "{DEFAULT_ACCESS_CODE}"')
    return [
        "[[printers]]",
        f'name = "Virtual {printer.model}"',
        f'host = "{host}"',
        f'serial = "{printer.serial}"',
        code_line,
        f'model = "{printer.model}"',
        f"mqtt_port = {printer.mqtt_port}",
        f"ftps_port = {printer.ftps_port}",
        f'ca_file = "{Path(printer.ca_cert_path).resolve()}"',
    ]
