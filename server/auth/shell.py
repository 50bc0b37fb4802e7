"""What ``layerwise user`` and ``layerwise token`` share: finding the database the server uses.

They open the SQLite file beside a running server (SQLite serialises the writes), without the data
directory's lock, so people and tokens can be managed while Layerwise runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.config import add_config_argument, load_settings_or_exit
from server.db import Database, open_database


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--data-dir", type=Path, help="the server's data directory (default from config)")


def open_db(args: argparse.Namespace) -> Database:
    settings = load_settings_or_exit(args.config, {"data_dir": args.data_dir})
    return open_database(settings.server.data_dir)
