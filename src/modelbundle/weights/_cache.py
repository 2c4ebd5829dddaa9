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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import ArtifactError, IntegrityError, RemoteStoreError
from ._parts import chosen_connections, fetch_parts, trim_to_verified, worth_splitting
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
#: a large blob's first stream is timed this long from its first byte; slower than FAST_STREAM (bytes/s), the rest comes in parts
PROBE_SECONDS = 1.0
FAST_STREAM = 400 * 1000 * 1000


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
        trim_to_verified(path)  # a split fetch that crashed left holes past what it had hashed
        self.have = _rehash(path, self.hasher, size)
        advance(self.have)

    def fetch_in_parts(self, source: BlobSource, blob: WeightBlob) -> None:
        """The rest over several connections (``_parts.py``); a stop leaves the hashed prefix and raises."""
        with open(self.path, "ab", buffering=0) as out:
            syncing = _BackgroundSync(out)
            try:
                self.have, error = fetch_parts(
                    source, self.path, self.have, self.size, self.hasher, self.advance, syncing.wrote, RESUMES
                )
            finally:
                syncing.stop()
                os.fsync(out.fileno())
        if error is not None:
            raise _stopped(blob, self.have, error) from error

    def append_from(self, source: BlobSource, probe: bool = False) -> bool:
        """One ranged read from ``have`` on; stops one byte past the size (a larger object is refused).

        ``probe``: the stream is timed for ``PROBE_SECONDS`` from its first byte, and left if it
        brought less than ``FAST_STREAM`` a second: then True (left on purpose, not cut).
        """
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
            timing: tuple[float, int] | None = None  # (when, received) at the first byte
            left = False
            try:
                while cut is None and not failed and received <= self.size:
                    if probe and timing is not None and time.monotonic() - timing[0] >= PROBE_SECONDS:
                        probe = False  # decided once
                        left = (received - timing[1]) / (time.monotonic() - timing[0]) < FAST_STREAM
                        if left:
                            break
                    buffer = free.get()
                    # one byte past the size at most: enough to tell a larger object
                    got, cut = _fill(body, memoryview(buffer)[: min(BUFFER_SIZE, self.size + 1 - received)])
                    if not got:
                        break
                    if timing is None:  # the clock starts at the first byte: the server's latency is not the link's rate
                        timing = (time.monotonic(), received + got)
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
            return left

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
        self._lock = threading.Lock()  # a split fetch's workers all write
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wrote(self, n: int) -> None:
        with self._lock:
            self._unsynced += n
            if self._unsynced < SYNC_EVERY:
                return
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

    One stream first. When it is slow (under ``FAST_STREAM`` over its first ``PROBE_SECONDS``) and
    much is left, as one connection to S3 or a CDN is, the rest comes in parts over several connections
    (``_parts.py``); a fast stream (a near registry, loopback) goes on alone, which costs less CPU.
    ``$MODELBUNDLE_FETCH_CONNECTIONS`` decides instead: 1, one stream; more, parts from the start.
    """
    if not worth_splitting(source, blob.size - partial.have):
        _stream(blob, source, partial)
        return
    if chosen_connections() is None:
        if not _stream(blob, source, partial, probe=True):
            return  # one stream was fast enough, and brought it all
        if not worth_splitting(source, blob.size - partial.have):  # slow, but little is left
            _stream(blob, source, partial)
            return
    try:
        actual = source.size()
    except RemoteStoreError as exc:
        raise _stopped(blob, partial.have, exc) from exc
    if actual != blob.size:  # parts ask for exact ranges: a larger object would not show otherwise
        raise _another_size(blob, actual, partial.path)
    partial.fetch_in_parts(source, blob)


def _stream(blob: WeightBlob, source: BlobSource, partial: _Partial, probe: bool = False) -> bool:
    """One stream from ``have`` on; True when ``probe`` found it slow and left it with bytes still to come.

    A transfer cut short (an error mid-stream, or a stream that ends early while the
    object still has the expected size) is resumed from where it stopped, up to
    ``RESUMES`` times while each try brings bytes; what arrived is never hashed as whole.
    """
    resumes = 0
    while partial.have < blob.size:
        before, ended_early = partial.have, False
        try:
            left = partial.append_from(source, probe)
        except RemoteStoreError as exc:
            cut = exc
        else:
            if partial.have >= blob.size:
                return False
            if left:
                return True
            ended_early, cut = True, RemoteStoreError(f"the stream ended after {partial.have} of {blob.size} bytes")
        if ended_early or partial.have == before:
            # a quiet early end, or a read that brought nothing: an object of another size is not this blob
            actual = _size_or_none(source)
            if actual is not None and actual != blob.size:
                raise _another_size(blob, actual, partial.path) from None
        if partial.have == before or resumes == RESUMES:
            raise _stopped(blob, partial.have, cut) from cut
        resumes += 1
    return False


def _stopped(blob: WeightBlob, have: int, cause: Exception) -> RemoteStoreError:
    return RemoteStoreError(
        f"artifact '{blob.label}': fetching {blob.uri} stopped at {have} of {blob.size} bytes ({cause}); "
        "what arrived is kept, and the next fetch resumes from there"
    )


def _another_size(blob: WeightBlob, actual: int, partial: Path) -> IntegrityError:
    """An object of another size is not this blob: nothing of it is kept."""
    partial.unlink(missing_ok=True)
    return IntegrityError(
        f"artifact '{blob.label}': {blob.uri} is {actual} bytes, the bundle expects "
        f"sha256:{blob.sha256} ({blob.size} bytes); nothing was used"
    )


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
