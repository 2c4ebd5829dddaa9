"""``BlobBackend``: the five operations a plain object store offers (a directory, an S3 bucket).

``BlobStore`` (in _blobstore.py) builds content-addressed bundles on top:
``blobs/sha256/<hex>`` for file contents and ``bundles/<name>/<version>.json``
for each bundle's index, written last. Keys are POSIX paths relative to the
store's root (the directory, or the bucket prefix).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from ._progress import Advance


class BlobBackend(ABC):
    """Raw storage under one root. Implementations translate their own errors to RemoteStoreError."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object ``key`` exists (complete: writes must be atomic)."""

    @abstractmethod
    def upload(self, key: str, source: Path, advance: Advance) -> None:
        """Write the file ``source`` to ``key`` atomically, calling ``advance(bytes)`` as it goes."""

    @abstractmethod
    def download(self, key: str, destination: Path, advance: Advance) -> None:
        """Copy object ``key`` to the file ``destination``; raise BundleNotFound-free RemoteStoreError if missing."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object atomically."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """Read a small object, or None if it does not exist."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (recursively), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove object ``key``; nothing happens if it does not exist."""
