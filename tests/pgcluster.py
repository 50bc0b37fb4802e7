"""A throw-away PostgreSQL cluster for the tests: Debian's binaries, a data directory in a temporary
folder, a free port on 127.0.0.1, trust authentication, no fsync (nothing here must survive a crash).

``LAYERWISE_TEST_POSTGRES_URL`` names a server to use instead (a database the tests may fill);
``LAYERWISE_NO_POSTGRES=1`` is the only way to skip the PostgreSQL half of the storage tests.
initdb refuses to run as root, so as root the cluster runs as the ``postgres`` user (setpriv).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

NO_POSTGRES_ENV = "LAYERWISE_NO_POSTGRES"
URL_ENV = "LAYERWISE_TEST_POSTGRES_URL"
BIN_ENV = "LAYERWISE_POSTGRES_BIN"
USER = "layerwise"
START_GUARD = 60.0  # only against a hang


class PostgresUnavailable(RuntimeError):
    pass


def bindir() -> Path:
    """Where initdb and postgres are: $LAYERWISE_POSTGRES_BIN, else Debian's newest /usr/lib/postgresql/N/bin."""
    if os.environ.get(BIN_ENV):
        return Path(os.environ[BIN_ENV])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresUnavailable("no PostgreSQL binaries under /usr/lib/postgresql "
                                  f"(apt-get install postgresql, or set {NO_POSTGRES_ENV}=1)")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    base: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def _as_postgres(base: Path) -> list[str]:
    """The command prefix that runs a program as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    entry = pwd.getpwnam("postgres")
    for path in [base, *base.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]


def start_cluster() -> Cluster:
    binaries = bindir()
    base = Path(tempfile.mkdtemp(prefix="layerwise-pg-"))
    (base / "sock").mkdir()
    prefix = _as_postgres(base)
    data = base / "data"
    init = subprocess.run(
        [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync", "--no-instructions"],
        capture_output=True, text=True, check=False)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    port = free_port()
    log = open(base / "postgres.log", "wb")  # noqa: SIM115 - the server writes to it until stop()
    process = subprocess.Popen(
        [*prefix, str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base / "sock"),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=200"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    cluster = Cluster(base, port, process)
    deadline = time.monotonic() + START_GUARD
    while True:
        try:
            psycopg.connect(cluster.admin_dsn, connect_timeout=2).close()
            return cluster
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                text = (base / "postgres.log").read_text(errors="replace")
                cluster.stop()
                raise PostgresUnavailable(f"postgres did not start: {text[-2000:]}") from None
            time.sleep(0.1)


def new_schema_url(server_url: str) -> str:
    """A fresh, empty schema on the server, as a URL whose connections use it (search_path)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in server_url else "?"
    return f"{server_url}{joiner}options=-csearch_path%3D{schema}"
