"""A large blob in parts over several connections: when a stream is slow, when asked, and how a stop or a crash resumes.

The source is a local file that reads like a remote store (``splits``), slowed down
or cut on purpose; parts are made small so that a few MiB are many parts.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelbundle.errors import RemoteStoreError
from modelbundle.weights import WeightBlob, _cache, _parts
from modelbundle.weights._cache import fetch_blob
from modelbundle.weights._sources import Body, FileSource

PART = 256 * 1024
DATA = os.urandom(16 * PART + 123)
DIGEST = hashlib.sha256(DATA).hexdigest()


class RemoteLike(FileSource):
    """A file read as a store is: in parts if the fetch wants, each read recorded, slow or cut on request."""

    splits = True

    def __init__(self, path: Path, *, delay: float = 0.0, cut_part_at: int | None = None) -> None:
        super().__init__(path.as_uri())
        self.delay = delay  # seconds per 64 KiB read
        self.cut_part_at = cut_part_at  # reads of the part starting there bring nothing and fail
        self.reads: list[tuple[int, int | None]] = []
        self.active = self.most_active = 0
        self._lock = threading.Lock()

    @contextmanager
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Body]:
        with self._lock:
            self.reads.append((start, stop))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.cut_part_at is not None and start == self.cut_part_at:
                raise RemoteStoreError("connection reset by peer")
            with super().read(start, stop) as body:
                yield _Paced(body, self.delay)
        finally:
            with self._lock:
                self.active -= 1


class _Paced:
    def __init__(self, body: Body, delay: float) -> None:
        self.body, self.delay = body, delay

    def readinto(self, buffer: memoryview) -> int:
        if self.delay:
            time.sleep(self.delay)
        return self.body.readinto(buffer[: 64 * 1024])


@pytest.fixture
def origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELBUNDLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(_parts.CONNECTIONS_ENV, raising=False)
    monkeypatch.setattr(_parts, "PART_SIZE", PART)
    path = tmp_path / "weights.bin"
    path.write_bytes(DATA)
    return path


def _blob(origin: Path) -> WeightBlob:
    return WeightBlob(origin.as_uri(), DIGEST, len(DATA), "model")


def _parts_read(source: RemoteLike) -> list[tuple[int, int | None]]:
    return [read for read in source.reads if read[1] is not None]


def test_a_slow_stream_gives_way_to_parts_over_several_connections(origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cache, "PROBE_SECONDS", 0.1)
    monkeypatch.setattr(_cache, "BUFFER_SIZE", 64 * 1024)  # the probe's clock is read between buffers
    source = RemoteLike(origin, delay=0.01)  # about 6 MB/s a connection, far under FAST_STREAM
    path = fetch_blob(_blob(origin), source, lambda n: None)
    assert path.read_bytes() == DATA
    first, parts = source.reads[0], _parts_read(source)
    assert first == (0, None)  # one stream first, timed
    probed = parts[0][0]
    assert 0 < probed < len(DATA)
    assert sorted(parts) == [(start, min(start + PART, len(DATA))) for start in range(probed, len(DATA), PART)]
    assert source.most_active == _parts.CONNECTIONS  # the parts came over several connections at once
    assert not list(path.parent.glob("*.partial*"))


def test_a_fast_stream_goes_on_alone(origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cache, "PROBE_SECONDS", 0.0)  # decided after the first buffer
    monkeypatch.setattr(_cache, "FAST_STREAM", 0)  # and any rate is fast
    source = RemoteLike(origin)
    assert fetch_blob(_blob(origin), source, lambda n: None).read_bytes() == DATA
    assert source.reads == [(0, None)]  # the timed stream itself went on to the end


@pytest.mark.parametrize("chosen", ["1", "3"])
def test_the_connections_setting_decides_without_timing(origin: Path, monkeypatch: pytest.MonkeyPatch, chosen: str) -> None:
    monkeypatch.setenv(_parts.CONNECTIONS_ENV, chosen)
    source = RemoteLike(origin, delay=0.005)  # paced, so that parts overlap as a network's do
    assert fetch_blob(_blob(origin), source, lambda n: None).read_bytes() == DATA
    if chosen == "1":
        assert source.reads == [(0, None)]
    else:
        assert source.reads[0] == (0, PART) and source.most_active == 3


def test_a_part_that_never_comes_stops_the_fetch_with_the_hashed_prefix_kept(origin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_parts.CONNECTIONS_ENV, "4")
    blob = _blob(origin)
    dead = RemoteLike(origin, cut_part_at=5 * PART)
    with pytest.raises(RemoteStoreError, match=r"artifact 'model': fetching .* stopped at \d+ of \d+ bytes .*what arrived is kept") as caught:
        fetch_blob(blob, dead, lambda n: None)
    assert "\n" not in str(caught.value)
    partial = _cache.blob_path(DIGEST).with_name(DIGEST + ".partial")
    assert partial.stat().st_size == 5 * PART  # parts after the dead one are dropped: the partial holds no hole
    assert partial.read_bytes() == DATA[: 5 * PART]
    assert not partial.with_name(partial.name + _parts.VERIFIED_SUFFIX).exists()

    healthy = RemoteLike(origin)
    assert fetch_blob(blob, healthy, lambda n: None).read_bytes() == DATA
    assert min(start for start, _ in healthy.reads) == 5 * PART  # only the rest was asked for


def test_a_crash_during_parts_is_cut_back_to_what_was_hashed(origin: Path) -> None:
    """A killed fetch leaves parts past a hole, and the marker of its hashed prefix: the next fetch keeps only that prefix."""
    partial = _cache.blob_path(DIGEST).with_name(DIGEST + ".partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA[: 3 * PART] + b"\0" * PART + DATA[4 * PART : 6 * PART])  # a hole where part 3 was
    partial.with_name(partial.name + _parts.VERIFIED_SUFFIX).write_text(str(2 * PART))
    source = RemoteLike(origin)
    assert fetch_blob(_blob(origin), source, lambda n: None).read_bytes() == DATA
    assert min(start for start, _ in source.reads) == 2 * PART
