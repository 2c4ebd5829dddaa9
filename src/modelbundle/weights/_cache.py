"""The weights cache: ``$MODELBUNDLE_HOME/blobs/sha256/<hex>``, one copy of each blob for every bundle.

A blob is written to ``<hex>.partial``, hashed as it arrives, and renamed to
``<hex>`` only once its size and digest match: a file under its final name
is always whole and verified. An interrupted fetch leaves the ``.partial``;
the next one re-hashes what is there and asks the source only for the rest.
A lock per blob keeps two processes from writing the same partial.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import IntegrityError
from ._ref import WeightBlob, WeightFile
from ._sources import CHUNK_SIZE, BlobSource

Advance = Callable[[int], None]
PARTIAL_SUFFIX = ".partial"


def cache_root() -> Path:
    from ..bundler import default_home

    return default_home() / "blobs"


def cached_path(digest: str) -> Path | None:
    """The verified cached blob of ``digest`` (hex, or ``sha256:<hex>``), or None when it is not cached."""
    path = cache_root() / "sha256" / digest.removeprefix("sha256:")
    return path if path.is_file() else None


def blob_path(digest: str) -> Path:
    return cache_root() / "sha256" / digest.removeprefix("sha256:")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_blob(blob: WeightBlob, source: BlobSource, advance: Advance) -> Path:
    """The cached blob, fetched from ``source`` first if missing (resuming a ``.partial``), verified."""
    final = blob_path(blob.sha256)
    if final.is_file():
        return final
    with _locked(final):
        if final.is_file():  # another process finished it while we waited
            return final
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        hasher = hashlib.sha256()
        have = _rehash(partial, hasher, blob.size)
        advance(have)
        if have < blob.size:
            with source.read(have) as chunks, open(partial, "ab") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    have += len(chunk)
                    advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        got = hasher.hexdigest()
        if have != blob.size or got != blob.sha256:
            partial.unlink(missing_ok=True)  # never used, never resumed
            raise IntegrityError(
                f"artifact '{blob.label}': {blob.uri} has sha256:{got} ({have} bytes), the bundle expects "
                f"sha256:{blob.sha256} ({blob.size} bytes); nothing was used"
            )
        os.replace(partial, final)
    return final


def _rehash(partial: Path, hasher: hashlib._Hash, size: int) -> int:
    """Feed what an interrupted fetch left into ``hasher``; its length (0, and the partial gone, if it is too long)."""
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        return 0
    if have > size:
        partial.unlink()
        return 0
    with open(partial, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return have


def assemble_dir(digest: str, files: tuple[WeightFile, ...]) -> Path:
    """A directory of a "dir" reference, made of links to its cached blobs: ``blobs/dirs/<digest>``."""
    target = cache_root() / "dirs" / digest
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
    try:
        for file in files:
            destination = staging / file.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = blob_path(file.sha256)
            try:
                os.link(source, destination)  # no second copy of the bytes
            except OSError:
                shutil.copyfile(source, destination)
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # not a concurrent maker who won the rename
            raise
    return target
