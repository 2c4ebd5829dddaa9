"""Readers for the places weights live: ``file://``, ``s3://`` and ``oci://``, picked by the URI's scheme.

A source knows the size of its object, reads it from any offset (the rest of a
``.partial`` after an interruption is one ranged request), and lists the files
under a directory URI. A read fills buffers the caller owns and reuses
(``readinto``): memory stays bounded whatever the size of the object, and no
chunk is allocated per read.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ArtifactError
from ._ref import SCHEMES

CHUNK_SIZE = 1024 * 1024


class Body(Protocol):
    """An object's bytes from some offset on: ``readinto`` fills ``buffer`` (or part of it), and returns 0 at the end."""

    def readinto(self, buffer: memoryview) -> int: ...


class BlobSource(ABC):
    """One object (or, for ``list_files``, one directory) behind a URI."""

    #: a large object is read in parts over several connections at once (``_parts.py``): remote stores
    splits = False

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def size(self) -> int:
        """The object's size in bytes."""

    @abstractmethod
    def read(self, start: int = 0, stop: int | None = None) -> AbstractContextManager[Body]:
        """``with source.read(start) as body:`` the object's bytes from ``start`` to ``stop`` (excluded; None: its end)."""

    @abstractmethod
    def list_files(self) -> list[str]:
        """The relative path of every file under this URI taken as a directory, sorted."""

    def close(self) -> None:  # noqa: B027  (most sources hold no connection)
        """Release the source's connections."""


def open_source(uri: str) -> BlobSource:
    """The reader for ``uri`` (``file:///path``, ``s3://bucket/key``, ``oci://registry/repo@sha256:<hex>``)."""
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        return FileSource(uri)
    if scheme == "s3":
        from ._s3 import S3Source

        return S3Source(uri)
    if scheme == "oci":
        from ._oci import OCISource

        return OCISource(uri)
    raise ArtifactError(f"{uri!r}: weights are referenced by {', '.join(s + '://' for s in SCHEMES)} URIs")


class FileSource(BlobSource):
    """``file:///srv/models/x``: a file (or directory) on this machine or a mounted volume."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise ArtifactError(f"{uri!r}: a file:// URI names a local path (file:///srv/models/x), not host {parts.netloc!r}")
        self.path = Path(unquote(parts.path))

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError as exc:
            raise ArtifactError(f"{self.uri}: cannot read {self.path} ({exc.strerror})") from None

    @contextmanager
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Body]:
        try:
            handle = open(self.path, "rb", buffering=0)  # noqa: SIM115  (closed by the with below, after the error is ours)
        except OSError as exc:
            raise ArtifactError(f"{self.uri}: cannot read {self.path} ({exc.strerror})") from None
        with handle:
            handle.seek(start)
            yield handle if stop is None else _Bounded(handle, stop - start)

    def list_files(self) -> list[str]:
        if not self.path.is_dir():
            raise ArtifactError(f"{self.uri}: {self.path} is not a directory")
        found = []
        for root, _dirs, names in os.walk(self.path):
            for name in names:
                found.append((Path(root) / name).relative_to(self.path).as_posix())
        return sorted(found)


class _Bounded:
    """The first ``left`` bytes of a body."""

    def __init__(self, body: Body, left: int) -> None:
        self._body, self._left = body, left

    def readinto(self, buffer: memoryview) -> int:
        got = self._body.readinto(buffer[: self._left]) if self._left > 0 else 0
        self._left -= got
        return got


def chunks_of(body: Body, size: int = CHUNK_SIZE) -> Iterator[memoryview]:
    """``body`` as successive views of one reused buffer (each valid until the next is taken)."""
    buffer = memoryview(bytearray(size))
    while got := body.readinto(buffer):
        yield buffer[:got]
