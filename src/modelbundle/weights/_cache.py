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
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import ArtifactError, IntegrityError, RemoteStoreError
from ._ref import WeightBlob, WeightFile
from ._sources import CHUNK_SIZE, BlobSource, Body

Advance = Callable[[int], None]
PARTIAL_SUFFIX = ".partial"
#: times one fetch resumes a cut transfer by itself (each try must bring bytes) before it gives up
RESUMES = 3
#: buffers read but not yet hashed, per blob, and their size: what bounds a fetch's memory (32 MiB)
IN_FLIGHT = 8
BUFFER_SIZE = 4 * 1024 * 1024
#: bytes written between two background flushes of a partial to disk
SYNC_EVERY = 64 * 1024 * 1024


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
        partial = _Partial(final.with_name(final.name + PARTIAL_SUFFIX), blob.size, advance)
        _download(blob, source, partial)
        got = partial.hasher.hexdigest()
        if partial.have != blob.size or got != blob.sha256:
            partial.path.unlink(missing_ok=True)  # never used, never resumed
            raise IntegrityError(_mismatch(blob, partial.have, got))
        os.replace(partial.path, final)
    return final


class _Partial:
    """``<hex>.partial``: what has arrived of a blob, hashed as it was written.

    The calling thread reads the source into reused buffers and appends them to
    the file; a second thread hashes them (hashlib releases the GIL), so the
    network, the disk and the hash run at once, and the hash, the slowest of the
    three, has a core to itself. ``have`` counts only bytes written and hashed,
    so a cut anywhere leaves it true; at most ``IN_FLIGHT`` buffers of
    ``BUFFER_SIZE`` are in use, whatever the blob's size.
    """

    def __init__(self, path: Path, size: int, advance: Advance) -> None:
        self.path, self.size, self.advance = path, size, advance
        self.hasher = hashlib.sha256()
        self.have = _rehash(path, self.hasher, size)
        advance(self.have)

    def append_from(self, source: BlobSource) -> None:
        """One ranged read from ``have`` on; stops one byte past the size (a larger object is refused)."""
        with source.read(self.have) as body, open(self.path, "ab", buffering=0) as out:
            free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
            for _ in range(IN_FLIGHT):
                free.put(bytearray(BUFFER_SIZE))
            written: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
            failed: list[BaseException] = []
            hashing = threading.Thread(target=self._hash, args=(written, free, failed), daemon=True)
            hashing.start()
            syncing = _BackgroundSync(out)
            cut: RemoteStoreError | None = None
            received = self.have
            try:
                while cut is None and not failed and received <= self.size:
                    buffer = free.get()
                    # one byte past the size at most: enough to tell a larger object
                    got, cut = _fill(body, memoryview(buffer)[: min(BUFFER_SIZE, self.size + 1 - received)])
                    if not got:
                        break
                    _write_all(out, memoryview(buffer)[:got])
                    syncing.wrote(got)
                    written.put((buffer, got))
                    received += got
            finally:
                written.put(None)  # what was read is still hashed, even after a cut
                hashing.join()
                syncing.stop()
                os.fsync(out.fileno())
            if failed:
                raise failed[0]
            if cut is not None:
                raise cut

    def _hash(self, written: queue.SimpleQueue[tuple[bytearray, int] | None], free: queue.SimpleQueue[bytearray], failed: list[BaseException]) -> None:
        while (item := written.get()) is not None:
            buffer, got = item
            try:
                if not failed:
                    self.hasher.update(memoryview(buffer)[:got])
                    self.have += got
                    self.advance(got)
            except BaseException as exc:  # raised again in the reading thread
                failed.append(exc)
            free.put(buffer)  # always given back, so the reader never waits on a buffer that will not come


def _fill(body: Body, buffer: memoryview) -> tuple[int, RemoteStoreError | None]:
    """Read into ``buffer`` until it is full or the body ends: (bytes read, the error that cut it, if one did)."""
    got = 0
    while got < len(buffer):
        try:
            n = body.readinto(buffer[got:])
        except RemoteStoreError as exc:
            return got, exc  # what arrived before the cut is kept
        if not n:
            break
        got += n
    return got, None


def _write_all(out: BinaryIO, data: memoryview) -> None:
    while data:
        data = data[out.write(data) or 0 :]


class _BackgroundSync:
    """Flushes a file to disk from a thread of its own every ``SYNC_EVERY`` bytes written.

    The closing fsync then waits for little: the disk writes while the network
    reads, instead of after it (on a 1 GB blob, the difference between a third and
    nothing of the fetch's time).
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._unsynced = 0
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wrote(self, n: int) -> None:
        self._unsynced += n
        if self._unsynced >= SYNC_EVERY:
            self._unsynced = 0
            self._out.flush()
            self._due.set()

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            try:
                os.fdatasync(self._out.fileno())
            except OSError:
                return  # the closing fsync reports it


def _download(blob: WeightBlob, source: BlobSource, partial: _Partial) -> None:
    """Bring ``partial`` to the blob's size (or one byte past it: not this blob).

    A transfer cut short (an error mid-stream, or a stream that ends early while the
    object still has the expected size) is resumed from where it stopped, up to
    ``RESUMES`` times while each try brings bytes; what arrived is never hashed as whole.
    """
    resumes = 0
    while partial.have < blob.size:
        before, ended_early = partial.have, False
        try:
            partial.append_from(source)
        except RemoteStoreError as exc:
            cut = exc
        else:
            if partial.have >= blob.size:
                return
            ended_early, cut = True, RemoteStoreError(f"the stream ended after {partial.have} of {blob.size} bytes")
        if ended_early or partial.have == before:
            # a quiet early end, or a read that brought nothing: an object of another size is not this blob
            actual = _size_or_none(source)
            if actual is not None and actual != blob.size:
                partial.path.unlink(missing_ok=True)
                raise IntegrityError(
                    f"artifact '{blob.label}': {blob.uri} is {actual} bytes, the bundle expects "
                    f"sha256:{blob.sha256} ({blob.size} bytes); nothing was used"
                ) from None
        if partial.have == before or resumes == RESUMES:
            raise RemoteStoreError(
                f"artifact '{blob.label}': fetching {blob.uri} stopped at {partial.have} of {blob.size} bytes ({cut}); "
                "what arrived is kept, and the next fetch resumes from there"
            ) from cut
        resumes += 1


def _size_or_none(source: BlobSource) -> int | None:
    try:
        return source.size()
    except (RemoteStoreError, ArtifactError):  # unreachable: the cut transfer is the error to report
        return None


def _mismatch(blob: WeightBlob, have: int, got: str) -> str:
    """Why the fetched bytes are not the blob: its digest, or its size when it is larger than the blob."""
    expects = f"the bundle expects sha256:{blob.sha256} ({blob.size} bytes); nothing was used"
    if have > blob.size:
        return f"artifact '{blob.label}': {blob.uri} holds more than {blob.size} bytes, {expects}"
    return f"artifact '{blob.label}': {blob.uri} has sha256:{got} ({have} bytes), {expects}"


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
