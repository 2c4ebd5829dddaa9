"""``file:///path``: a directory (local disk or a network mount) as a BlobBackend."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import RemoteStoreError
from ._backend import BlobBackend
from ._progress import Advance

_CHUNK = 4 * 1024 * 1024


class FileBackend(BlobBackend):
    """Objects are files under ``root``; every write goes to a temporary file first, then is renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def upload(self, key: str, source: Path, advance: Advance) -> None:
        with open(source, "rb") as src, self._atomic(key) as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
                advance(len(chunk))

    def download(self, key: str, destination: Path, advance: Advance) -> None:
        path = self._path(key)
        try:
            with open(path, "rb") as src, open(destination, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    advance(len(chunk))
        except FileNotFoundError:
            raise RemoteStoreError(f"{path} is missing from the store (an incomplete or damaged store)") from None
        except OSError as exc:
            raise RemoteStoreError(f"cannot read {path}: {exc.strerror}") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._atomic(key) as dst:
            dst.write(data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RemoteStoreError(f"cannot read {self._path(key)}: {exc.strerror}") from None

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise RemoteStoreError(f"cannot remove {self._path(key)}: {exc.strerror}") from None

    def _atomic(self, key: str) -> AbstractContextManager[BinaryIO]:
        return _atomic_write(self._path(key))


@contextmanager
def _atomic_write(target: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``target`` whole, or not at all (a temporary file, then a rename)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    except OSError as exc:
        raise RemoteStoreError(f"cannot write to {target.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
