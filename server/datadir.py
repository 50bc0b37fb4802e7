"""One Layerwise process per data directory.

Two processes on one data directory would run two trackers and two outboxes over one ledger. The
first to start takes an exclusive ``flock`` on ``DATA_DIR/layerwise.lock`` and holds it for the life of
the process; the kernel drops it when the process ends, however it ends (``SIGKILL`` included), so a
stale lock file never blocks a restart. A second process finds the lock taken and stops before it
contacts any printer or resumes any job. Within one process the lock is shared (counted): tests and
restarts may build several runtimes on one directory.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "layerwise.lock"


class DataDirInUse(Exception):
    """Another live process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir, self.pid = data_dir, pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"another Layerwise ({who}) is already using {data_dir}")


@dataclass
class _Held:
    fd: int
    users: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


@dataclass
class DataDirLock:
    """This process's hold on a data directory; ``release()`` once per ``lock_data_dir``."""

    data_dir: Path
    released: bool = False

    def release(self) -> None:
        with _guard:
            if self.released:
                return
            self.released = True
            held = _held.get(self.data_dir)
            if held is None:
                return
            held.users -= 1
            if held.users == 0:
                del _held[self.data_dir]
                os.close(held.fd)  # drops the flock; the file stays (removing it would race a newcomer)


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None


def lock_data_dir(data_dir: Path | str) -> DataDirLock:
    """Take (or share, within this process) the data directory's lock; raise DataDirInUse if another
    process holds it. Creates the directory if needed."""
    directory = Path(data_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.users += 1
            return DataDirLock(key)
        # O_CLOEXEC: a program this process starts must not inherit (and so prolong) the lock.
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise DataDirInUse(key, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the second process's message only
        _held[key] = _Held(fd, 1)
        return DataDirLock(key)
