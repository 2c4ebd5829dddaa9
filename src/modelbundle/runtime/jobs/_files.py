"""Bodies and results too big for a database row: files beside the database, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class PayloadFiles:
    """``<dir>/payloads/<job id>.<kind>`` files; a reader sees a whole file or none (tmp + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "payloads"
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str, kind: str) -> Path:
        return self.directory / f"{job_id}.{kind}"

    def write(self, job_id: str, kind: str, data: bytes) -> str:
        """Write the file and return its name (what the row records)."""
        target = self.path(job_id, kind)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())  # the row that names it is committed next: the bytes must be there first
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.name

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def remove(self, *names: str | None) -> None:
        for name in names:
            if name:
                (self.directory / name).unlink(missing_ok=True)

    def remove_temporary(self) -> None:
        """Half-written files of a server that died while writing them."""
        for tmp in self.directory.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
