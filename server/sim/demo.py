"""``layerwise demo``: Layerwise wired to a virtual printer and a Spoolman stand-in.

Everything runs in one process on loopback, in a temporary data directory: a
Spoolman stand-in seeded with vendors, filaments and spools; a virtual X1C with
one AMS of four spools (two RFID-tagged) and an external spool, printing a small
4-colour job again and again; and Layerwise itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.logs import setup_logging
from server.sim.demo_print import demo_3mf
from server.sim.printer import AmsUnit, Tray, VirtualPrinter
from server.sim.spoolman import DEMO_TRAY_UUIDS, SpoolmanStandin, SpoolmanStore, seed_demo

log = logging.getLogger(__name__)

DEMO_PRINTER = "Demo X1C"
DEMO_SERIAL = "00M09A350100001"
DEMO_ACCESS_CODE = "demo1234"
DEMO_FILE = "/cache/layerwise-demo.gcode.3mf"
# Slicer filament index -> global tray (the job's ams_mapping).
DEMO_MAPPING = [0, 1, 2, 3]
# Trays whose spools the demo assigns at first start; the RFID-tagged trays 0 and 3 are matched by their tags.
DEMO_ASSIGNMENTS = {1: 3, 2: 4, 254: 6}


def demo_ams() -> tuple[list[AmsUnit], Tray]:
    trays = [
        Tray(0, "PLA", "000000FF", tray_uuid=DEMO_TRAY_UUIDS["pla_black"], tag_uid="5A3C2B1D00000001",
             remain=80, weight_g=1000, sub_brands="PLA Basic", info_idx="GFA00"),
        Tray(1, "PLA", "FFFFFFFF", remain=-1, sub_brands="PLA Basic", info_idx="GFA00"),
        Tray(2, "PLA", "C12E1FFF", remain=-1, sub_brands="PLA Basic", info_idx="GFA00"),
        Tray(3, "PETG", "00AE42FF", tray_uuid=DEMO_TRAY_UUIDS["petg_green"], tag_uid="5A3C2B1D00000002",
             remain=92, weight_g=1000, sub_brands="PETG HF", info_idx="GFG02"),
    ]
    return [AmsUnit(0, "ams", trays, humidity=3, temp=24.5)], Tray(254, "PETG", "1F4E9EFF", remain=-1)


def demo_printer(cert_dir: Path) -> VirtualPrinter:
    """The demo's virtual X1C with its AMS and external spool, holding the demo print file."""
    ams, external = demo_ams()
    printer = VirtualPrinter(serial=DEMO_SERIAL, access_code=DEMO_ACCESS_CODE, model="X1C", ams=ams,
                             external=external, cert_dir=cert_dir)
    printer.add_file(DEMO_FILE, demo_3mf())
    return printer


def demo_settings(printer: VirtualPrinter, spoolman_url: str, data_dir: Path, *, host: str = "127.0.0.1",
                  port: int = 7913) -> Settings:
    """Layerwise's settings for the demo: the virtual printer (trusting its own CA) and the stand-in."""
    return Settings(
        server=ServerConfig(host=host, port=port, data_dir=data_dir),
        spoolman=SpoolmanConfig(url=spoolman_url),
        printers=(
            PrinterConfig(
                name=DEMO_PRINTER, host=printer.host, serial=DEMO_SERIAL,
                access_code=SecretStr(DEMO_ACCESS_CODE), mqtt_port=printer.mqtt_port,
                ftps_port=printer.ftps_port, model="X1C", ca_file=printer.ca_cert_path,
            ),
        ),
        seed_mappings={DEMO_PRINTER: DEMO_ASSIGNMENTS},
        seed_sources={DEMO_PRINTER: "the demo"},
        demo=True,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address for the web app (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7913, help="port for the web app (default 7913)")
    parser.add_argument("--layer-seconds", type=float, default=3.0, help="how long each layer takes")
    parser.add_argument("--data-dir", help="keep Layerwise's data here instead of a temporary directory")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    return run_demo(args.host, args.port, layer_seconds=args.layer_seconds,
                    data_dir=Path(args.data_dir) if args.data_dir else None)


def run_demo(host: str = "127.0.0.1", port: int = 7913, *, layer_seconds: float = 3.0,
             data_dir: Path | None = None) -> int:
    from server.listen import bind_listener

    bind_listener(host, port).close()  # a port in use: one line and exit 2 (PortUnavailable), before anything starts
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(demo(host, port, layer_seconds=layer_seconds, data_dir=data_dir, stop_on_sigterm=True))
    return 0


DEMO_NOTICE = ("This is a demo: a virtual printer and a Spoolman stand-in; nothing is billed to a real Spoolman. "
               "To connect your printer, write a configuration (docs/configuration.md) and run: "
               "layerwise serve --config layerwise.toml")


async def demo(host: str, port: int, *, layer_seconds: float, data_dir: Path | None,
               on_ready: Callable[[str], None] | None = None, stop_on_sigterm: bool = False) -> None:
    """Run until cancelled; ``on_ready`` gets the web app's URL once it listens.

    ``stop_on_sigterm``: SIGTERM cancels the demo like Ctrl-C, so its temporary folder is removed either way.
    """
    from server.listen import display_url
    from server.runtime import Runtime
    from server.web.app import create_app
    from server.web.embedded import EmbeddedServer

    main = asyncio.current_task()
    if stop_on_sigterm and main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    store = SpoolmanStore()
    seed_demo(store)
    with tempfile.TemporaryDirectory(prefix="layerwise-demo-") as tmp:
        data = data_dir or Path(tmp) / "data"
        async with SpoolmanStandin(store) as spoolman, demo_printer(Path(tmp) / "printer-certs") as printer:
            settings = demo_settings(printer, spoolman.url, data, host=host, port=port or 7913)
            runtime = Runtime.build(settings)
            web = EmbeddedServer(create_app(runtime), host, port, lifespan="on", name="layerwise")
            printing = asyncio.create_task(_print_forever(printer, layer_seconds))
            try:
                await web.start()
                print(f"Layerwise demo: open {display_url('http', host, web.port)}   "
                      f"(Spoolman stand-in: {spoolman.url})\n{DEMO_NOTICE}\n"
                      + (f"Its data is in {data}." if data_dir else f"Its data is in {tmp}, removed when it stops."),
                      flush=True)
                if on_ready is not None:
                    on_ready(web.url)
                await web.serve_until_cancelled()
            finally:
                printing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await printing


async def _print_forever(printer: VirtualPrinter, layer_seconds: float) -> None:
    await asyncio.sleep(3)  # let Layerwise connect and show the idle printer first
    while True:
        await printer.run_print(DEMO_FILE, layer_seconds=layer_seconds, ams_mapping=DEMO_MAPPING,
                                subtask_name="Layerwise demo")
        await asyncio.sleep(10)
