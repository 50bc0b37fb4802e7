"""A Spoolman stand-in (0.26 semantics) for tests and the demo: data store, HTTP app, runner, demo seed."""

from server.sim.spoolman.app import create_standin_app
from server.sim.spoolman.recorder import RECORDER, Exchange, ExchangeRecorder
from server.sim.spoolman.seed import DEMO_TRAY_UUIDS, TRAY_UUID_FIELD, seed_demo
from server.sim.spoolman.standin import SpoolmanStandin
from server.sim.spoolman.store import (
    SpoolmanStore,
    StoreNotFound,
    StoreRejected,
    length_from_weight,
    weight_from_length,
)

__all__ = [
    "DEMO_TRAY_UUIDS",
    "RECORDER",
    "TRAY_UUID_FIELD",
    "Exchange",
    "ExchangeRecorder",
    "SpoolmanStandin",
    "SpoolmanStore",
    "StoreNotFound",
    "StoreRejected",
    "create_standin_app",
    "length_from_weight",
    "seed_demo",
    "weight_from_length",
]
