"""One server per SQLite jobs directory: an exclusive lock held while it serves.

SQLite's own locking keeps the database whole when several processes write, but a server
re-queues every job it finds running when it starts (their server died): a second server on
the same directory would take the first one's live jobs for orphans. So the directory is
locked (``flock`` on ``<dir>/lock``), and a second server is refused in one line.
Several workers of one server share the directory: the server's parent process holds the lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ...errors import ServeError


class DirectoryLock:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ServeError naming the server that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ServeError(
                f"the jobs directory {self.path.parent} is in use by another server (pid {holder}); "
                "give each server its own --jobs-dir, or share a queue with --jobs-url postgresql://..."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
