"""One large blob over several connections: parts fetched by ranged GETs at once, hashed in order.

A single stream from S3 or a CDN runs at a fraction of the link (per-connection
limits, one TCP window); several ranged GETs of the same object fill it, as
Cog's pget and boto3's transfer manager do. Workers write each part at its
offset in the ``.partial``; the calling thread hashes the file in order as the
written prefix grows, reading back from the page cache, so memory stays a
buffer per thread whatever the size. Workers run at most ``WINDOW`` parts per
connection ahead of the hash, so what is hashed is still cached.

The ``.partial`` may have holes while parts arrive. ``<partial>.verified``
records the hashed prefix: whoever resumes after a crash cuts the partial to
it (``trim_to_verified``); a fetch that ends, however it ends, cuts it first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RemoteStoreError
from ._sources import BlobSource, Body

#: a part, one ranged GET; a blob is split when at least two parts remain
PART_SIZE = 64 * 1024 * 1024
#: connections per blob; ``$MODELBUNDLE_FETCH_CONNECTIONS`` overrides (1: one stream)
CONNECTIONS = 4
CONNECTIONS_ENV = "MODELBUNDLE_FETCH_CONNECTIONS"
#: parts per connection that may be fetched ahead of the hash
WINDOW = 2
BUFFER_SIZE = 4 * 1024 * 1024
VERIFIED_SUFFIX = ".verified"


def connections() -> int:
    """Connections per blob: ``$MODELBUNDLE_FETCH_CONNECTIONS`` when it is a whole number of at least 1, else ``CONNECTIONS``."""
    return chosen_connections() or CONNECTIONS


def chosen_connections() -> int | None:
    """``$MODELBUNDLE_FETCH_CONNECTIONS``, when set to a whole number of at least 1: then parts are not a guess."""
    value = os.environ.get(CONNECTIONS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def worth_splitting(source: BlobSource, remaining: int) -> bool:
    return source.splits and connections() > 1 and remaining >= 2 * PART_SIZE


def trim_to_verified(partial: Path) -> None:
    """After a split fetch that did not end (a crash): keep only the prefix it had hashed."""
    marker = partial.with_name(partial.name + VERIFIED_SUFFIX)
    try:
        verified = int(marker.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return
    if partial.exists() and partial.stat().st_size > verified:
        os.truncate(partial, verified)
    marker.unlink(missing_ok=True)


@dataclass
class _Part:
    start: int
    stop: int
    written: int = 0  # bytes from ``start`` on, on disk

    @property
    def done(self) -> bool:
        return self.start + self.written >= self.stop


class _Shared:
    """What the workers and the hashing thread share, under one condition."""

    def __init__(self, parts: list[_Part], workers: int) -> None:
        self.parts = parts
        self.condition = threading.Condition()
        self.next = 0  # the next part to take
        self.hashed_parts = 0  # parts wholly hashed
        self.running = workers
        self.error: RemoteStoreError | None = None
        self.failed_at = 0  # the start of the part that failed: parts before it are still finished
        self.window = WINDOW * workers

    def take(self) -> _Part | None:
        """The next part to fetch, once it is within the window; None when none is left or the fetch failed."""
        with self.condition:
            while self.error is None and self.next < len(self.parts) and self.next >= self.hashed_parts + self.window:
                self.condition.wait()
            if self.error is not None or self.next >= len(self.parts):
                return None
            self.next += 1
            return self.parts[self.next - 1]

    def wrote(self, part: _Part, count: int) -> None:
        with self.condition:
            part.written += count
            self.condition.notify_all()

    def fail(self, error: RemoteStoreError, at: int = 0) -> None:
        """The fetch stops: parts from ``at`` on are dropped, parts before it are finished (the prefix kept grows)."""
        with self.condition:
            if self.error is None:
                self.error, self.failed_at = error, at
            else:
                self.failed_at = min(self.failed_at, at)
            self.condition.notify_all()

    def dropped(self, part: _Part) -> bool:
        return self.error is not None and part.start >= self.failed_at

    def worker_ended(self) -> None:
        with self.condition:
            self.running -= 1
            self.condition.notify_all()

    def frontier(self, offset: int) -> int:
        """Wait until bytes past ``offset`` are written in order; the end of that prefix (``offset``: no more will come)."""
        with self.condition:
            while True:
                while self.hashed_parts < len(self.parts) and self.parts[self.hashed_parts].stop <= offset:
                    self.hashed_parts += 1
                    self.condition.notify_all()  # the window moved
                if self.hashed_parts == len(self.parts):
                    return offset
                part = self.parts[self.hashed_parts]
                end = part.start + part.written
                if end > offset:
                    return end
                if self.running == 0:  # every worker has stopped: what is written in order is all there is
                    return offset
                self.condition.wait()


def fetch_parts(
    source: BlobSource, path: Path, have: int, size: int, hasher: hashlib._Hash, advance: Callable[[int], None],
    wrote: Callable[[int], None], resumes: int,
) -> tuple[int, RemoteStoreError | None]:
    """Fetch ``[have, size)`` of the blob into ``path`` over several connections, hashing in order.

    Returns the hashed prefix's length (the partial is cut to it) and the error that stopped the
    fetch, if one did. ``wrote`` is told of every write (the background flush); ``advance`` of
    every byte hashed; a cut part is resumed ``resumes`` times while each try brings bytes.
    """
    parts = [_Part(start, min(start + PART_SIZE, size)) for start in range(have, size, PART_SIZE)]
    workers = min(connections(), len(parts))
    shared = _Shared(parts, workers)
    marker = path.with_name(path.name + VERIFIED_SUFFIX)
    marker.write_text(str(have))
    out = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    threads = [threading.Thread(target=_work, args=(shared, source, out, wrote, resumes), daemon=True) for _ in range(workers)]
    try:
        for thread in threads:
            thread.start()
        hashed = _hash_in_order(shared, path, have, hasher, advance, marker)
    finally:
        shared.fail(RemoteStoreError("the fetch was abandoned"))  # stops every worker if the hash itself failed
        for thread in threads:
            thread.join()
        os.close(out)
    os.truncate(path, hashed)  # nothing past the hashed prefix: the partial is whole again
    marker.unlink(missing_ok=True)
    return hashed, None if hashed == size else shared.error


def _hash_in_order(
    shared: _Shared, path: Path, offset: int, hasher: hashlib._Hash, advance: Callable[[int], None], marker: Path
) -> int:
    buffer = memoryview(bytearray(BUFFER_SIZE))
    marked = offset
    with open(path, "rb", buffering=0) as reader:
        while True:
            frontier = shared.frontier(offset)
            if frontier <= offset:
                return offset
            while offset < frontier:
                reader.seek(offset)
                got = reader.readinto(buffer[: min(BUFFER_SIZE, frontier - offset)])
                if not got:
                    raise RemoteStoreError(f"{path} is shorter than what was written to it")
                hasher.update(buffer[:got])
                offset += got
                advance(got)
            if offset - marked >= PART_SIZE:  # what a crash keeps: cheap, and at most a part behind
                marker.write_text(str(offset))
                marked = offset


def _work(shared: _Shared, source: BlobSource, out: int, wrote: Callable[[int], None], resumes: int) -> None:
    buffer = memoryview(bytearray(BUFFER_SIZE))
    try:
        while (part := shared.take()) is not None:
            try:
                _fetch_part(shared, source, part, out, buffer, wrote, resumes)
            except RemoteStoreError as exc:
                shared.fail(exc, part.start)
            except BaseException as exc:  # a worker's failure is the fetch's, told in the calling thread
                shared.fail(RemoteStoreError(f"fetching a part failed ({type(exc).__name__}: {exc})"), part.start)
    finally:
        shared.worker_ended()


def _fetch_part(
    shared: _Shared, source: BlobSource, part: _Part, out: int, buffer: memoryview, wrote: Callable[[int], None], resumes: int
) -> None:
    """One part, resumed from where a cut left it while each try brings bytes (as a whole blob is)."""
    tries = 0
    while not part.done:
        before = part.written
        try:
            with source.read(part.start + part.written, part.stop) as body:
                _copy(shared, body, part, out, buffer, wrote)
        except RemoteStoreError:
            if part.written == before or tries == resumes or shared.dropped(part):
                raise
            tries += 1
        if shared.dropped(part):
            return


def _copy(shared: _Shared, body: Body, part: _Part, out: int, buffer: memoryview, wrote: Callable[[int], None]) -> None:
    while not part.done and not shared.dropped(part):
        want = min(len(buffer), part.stop - part.start - part.written)
        got = 0
        try:
            while got < want:
                n = body.readinto(buffer[got:want])
                if not n:
                    break
                got += n
        finally:  # what arrived before a cut is kept
            _write_at(out, buffer[:got], part.start + part.written)
            wrote(got)
            shared.wrote(part, got)
        if got < want:
            raise RemoteStoreError(f"the stream ended at byte {part.start + part.written} of the part ending at {part.stop}")


def _write_at(out: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(out, data, offset)
        data, offset = data[written:], offset + written
