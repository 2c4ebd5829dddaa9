"""Reuse on pull: files the local store already has are copied, not downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..bundler import LocalStore, read_record
from ..errors import IntegrityError

_CHUNK = 1024 * 1024


class LocalFiles:
    """sha256 -> a file with that content in some bundle of the local store (from their RECORDs)."""

    def __init__(self, store: LocalStore) -> None:
        self._by_digest: dict[str, Path] = {}
        for bundle in store.list():
            try:
                record = read_record(bundle.path)
            except IntegrityError:
                continue  # a damaged bundle is no source for others
            for path, (digest, _size) in record.items():
                self._by_digest.setdefault(digest, bundle.path / path)

    def copy(self, digest: str, destination: Path) -> bool:
        """Copy the local file with ``digest`` to ``destination``; False if none (or it no longer matches)."""
        source = self._by_digest.get(digest)
        if source is None or not source.is_file():
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        with open(source, "rb") as src, open(destination, "wb") as dst:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                dst.write(chunk)
        if hasher.hexdigest() != digest:
            destination.unlink()
            return False
        return True

    def has(self, digest: str) -> bool:
        return digest in self._by_digest
