"""One writer per run directory: a lock file that names its owner, released by the kernel if it dies.

Two processes training into one run directory (two ``--resume``, or ``train --out`` twice) would
interleave checkpoints and metric rows, so the second is refused. ``RUN_DIR/.lock`` is held with an
advisory ``flock`` and holds the owner's pid, host and start time for the refusal message. The kernel
drops a ``flock`` when its process ends however it ends (SIGKILL, OOM kill), so a lock left by a
killed run is stale by construction and the next process simply takes it: no pid guessing, and no
window in which two rescuers both decide a lock is stale. The file itself stays (deleting a lock file
that another process has just opened is the classic race); its contents name the last owner.
On a platform without ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from gankit.config import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class RunLocked(ConfigError):
    """Another live process owns the run directory."""


def read_owner(run_dir: str | Path) -> dict[str, Any] | None:
    """The pid, host and start time written by the lock's last owner (``None`` if unreadable)."""
    try:
        return json.loads((Path(run_dir) / LOCK).read_text())
    except (OSError, ValueError):
        return None


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir/.lock`` for this process, or raises ``RunLocked``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if fcntl is None or self.held:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            owner = read_owner(self.path.parent) or {}
            raise RunLocked(
                f"{self.path.parent} is in use by process {owner.get('pid', '?')} on {owner.get('host', '?')} "
                f"(since {owner.get('since', '?')}): two writers would corrupt its checkpoints. Wait for it to "
                "finish or stop it, or train into another --out"
            ) from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
