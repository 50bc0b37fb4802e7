"""What the commands that work on the database beside a running server share (``layerwise user``,
``token``, ``backup``, ``export``): finding the database the server uses.

They open it without the data directory's lock, so they work while Layerwise runs (SQLite serialises
the writes; on PostgreSQL the server does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.config import ServerConfig, add_config_argument, load_settings_or_exit
from server.db.engine import Database, open_database


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--data-dir", type=Path, help="the server's data directory (default from config)")


def server_settings(args: argparse.Namespace) -> ServerConfig:
    return load_settings_or_exit(args.config, {"data_dir": args.data_dir}).server


def open_db(args: argparse.Namespace) -> Database:
    server = server_settings(args)
    return open_database(server.data_dir, server.database_url_text())
