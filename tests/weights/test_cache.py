"""The weights cache with file:// sources: fetched once, verified, atomic, resumed, offline, directories."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelbundle import weights
from modelbundle.errors import ArtifactError, IntegrityError, RemoteStoreError
from modelbundle.weights import WeightBlob, WeightRef
from modelbundle.weights._cache import RESUMES, fetch_blob
from modelbundle.weights._sources import Body, FileSource


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELBUNDLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELBUNDLE_OFFLINE", raising=False)
    return tmp_path / "home"


def _file(path: Path, data: bytes) -> WeightRef:
    path.write_bytes(data)
    return WeightRef("model", path.as_uri(), hashlib.sha256(data).hexdigest(), len(data))


def test_a_file_is_fetched_into_the_cache_once_and_verified(home: Path, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk, not a whole number of them
    ref = _file(tmp_path / "weights.bin", data)
    assert weights.cached_path(ref.sha256) is None
    path = weights.ensure([ref])["model"]
    assert path == home / "blobs" / "sha256" / ref.sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.sha256
    assert weights.cached_path("sha256:" + ref.sha256) == path
    # the cache answers from then on: the source may go away
    (tmp_path / "weights.bin").unlink()
    assert weights.ensure([ref], offline=True)["model"] == path
    assert not list(path.parent.glob("*.partial"))


def test_a_wrong_digest_is_refused_and_nothing_is_kept(home: Path, tmp_path: Path) -> None:
    ref = _file(tmp_path / "weights.bin", b"the real weights")
    (tmp_path / "weights.bin").write_bytes(b"the fake weights")  # the same size
    got = hashlib.sha256(b"the fake weights").hexdigest()
    with pytest.raises(IntegrityError, match=rf"artifact 'model'.* has sha256:{got}.*expects sha256:{ref.sha256}"):
        weights.ensure([ref])
    folder = home / "blobs" / "sha256"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == []


def test_an_interrupted_fetch_resumes_from_its_partial(home: Path, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    ref = _file(tmp_path / "weights.bin", data)
    partial = home / "blobs" / "sha256" / f"{ref.sha256}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:1_000_000])
    # the source now differs in the half already fetched: a resume reads only the rest, so it
    # still yields the right blob (a fetch from scratch would hash the changed bytes and refuse)
    (tmp_path / "weights.bin").write_bytes(b"x" * 1_000_000 + data[1_000_000:])
    path = weights.ensure([ref])["model"]
    assert path.read_bytes() == data
    assert not partial.exists()


class CuttingSource(FileSource):
    """A file whose reads stop after ``cut`` bytes each, quietly or with the error a dropped connection gives."""

    def __init__(self, path: Path, cut: int, *, quietly: bool, cuts: int) -> None:
        super().__init__(path.as_uri())
        self.cut, self.quietly, self.cuts = cut, quietly, cuts
        self.starts: list[int] = []

    @contextmanager
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Body]:
        self.starts.append(start)
        with super().read(start, stop) as body:
            yield _CutBody(body, self.cut, self.quietly) if len(self.starts) <= self.cuts else body


class _CutBody:
    def __init__(self, body: Body, cut: int, quietly: bool) -> None:
        self.body, self.left, self.quietly = body, cut, quietly

    def readinto(self, buffer: memoryview) -> int:
        if not self.left:
            if self.quietly:
                return 0
            raise RemoteStoreError("connection reset by peer")
        got = self.body.readinto(buffer[: self.left])
        self.left -= got
        return got


@pytest.mark.parametrize("quietly", [True, False], ids=["stream-ends-early", "connection-drops"])
def test_a_cut_transfer_is_resumed_from_where_it_stopped_never_hashed_as_whole(home: Path, tmp_path: Path, quietly: bool) -> None:
    data = os.urandom(3 * 1024 * 1024)
    ref = _file(tmp_path / "weights.bin", data)
    blob = WeightBlob(ref.uri, ref.sha256, ref.size, "model")
    source = CuttingSource(tmp_path / "weights.bin", 1_000_000, quietly=quietly, cuts=2)
    path = fetch_blob(blob, source, lambda n: None)
    assert source.starts == [0, 1_000_000, 2_000_000]  # each try asks only for the rest
    assert path.read_bytes() == data

    # a source that brings nothing more: the fetch stops with a one-line error, and keeps what arrived
    path.unlink()
    stuck = CuttingSource(tmp_path / "weights.bin", 500_000, quietly=quietly, cuts=RESUMES + 2)
    with pytest.raises(RemoteStoreError, match=r"artifact 'model': fetching .* stopped at 2000000 of 3145728 bytes.*resumes") as caught:
        fetch_blob(blob, stuck, lambda n: None)
    assert "\n" not in str(caught.value) and not path.exists()
    assert stuck.starts == [500_000 * i for i in range(RESUMES + 1)]
    assert (path.parent / f"{ref.sha256}.partial").stat().st_size == 500_000 * (RESUMES + 1)


def test_an_object_of_another_size_is_refused_and_nothing_is_kept(home: Path, tmp_path: Path) -> None:
    ref = _file(tmp_path / "weights.bin", b"the real weights")
    (tmp_path / "weights.bin").write_bytes(b"the real weights, and more")
    with pytest.raises(IntegrityError, match=rf"artifact 'model'.* holds more than 16 bytes.*expects sha256:{ref.sha256}"):
        weights.ensure([ref])
    # shorter than what an interrupted fetch already kept: refused, not resumed for ever
    partial = home / "blobs" / "sha256" / f"{ref.sha256}.partial"
    partial.write_bytes(b"the real weig")
    (tmp_path / "weights.bin").write_bytes(b"the real")
    with pytest.raises(IntegrityError, match=rf"artifact 'model'.* is 8 bytes, the bundle expects sha256:{ref.sha256} \(16 bytes\)"):
        weights.ensure([ref])
    assert sorted(p.name for p in partial.parent.iterdir() if not p.name.endswith(".lock")) == []


def test_offline_a_missing_blob_is_a_one_line_error(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _file(tmp_path / "weights.bin", b"weights")
    monkeypatch.setenv("MODELBUNDLE_OFFLINE", "1")
    with pytest.raises(ArtifactError, match=rf"artifact 'model'.*sha256:{ref.sha256}.*not in the cache.*MODELBUNDLE_OFFLINE") as caught:
        weights.ensure([ref])
    assert "\n" not in str(caught.value)
    assert weights.cached_path(ref.sha256) is None


def test_a_directory_is_described_fetched_and_assembled_from_blobs(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "tokenizer"
    (source / "sub").mkdir(parents=True)
    (source / "vocab.txt").write_text("a b c")
    (source / "sub" / "config.json").write_text("{}")
    (source / "copy.txt").write_text("a b c")  # the same content: one blob
    ref = weights.describe("tok", source.as_uri(), "dir")
    assert [f.path for f in ref.files] == ["copy.txt", "sub/config.json", "vocab.txt"]
    assert ref.sha256 == weights.dir_digest(list(reversed(ref.files)))  # order does not matter
    path = weights.ensure([ref])["tok"]
    assert (path / "sub" / "config.json").read_text() == "{}"
    assert (path / "vocab.txt").read_text() == (path / "copy.txt").read_text() == "a b c"
    assert len([p for p in (home / "blobs" / "sha256").iterdir() if len(p.name) == 64]) == 2
    assert ref.size == len("a b c") * 2 + len("{}")


def test_describe_streams_a_file(tmp_path: Path) -> None:
    data = os.urandom(1024 * 1024 + 5)
    (tmp_path / "w.bin").write_bytes(data)
    ref = weights.describe("w", (tmp_path / "w.bin").as_uri(), "file")
    assert (ref.sha256, ref.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert ref.files == ()


def test_progress_is_a_line_per_blob_unless_bars_show_or_quiet(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelbundle.stores import TransferProgress

    data = os.urandom(2 * 1024 * 1024 + 1)
    ref = _file(tmp_path / "weights.bin", data)
    with TransferProgress() as progress:  # no terminal here: its bars cannot show, so lines instead
        weights.ensure([ref], progress=progress)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "fetching weights 'model': 2.0 MiB"
    assert re.fullmatch(r"fetching weights 'model': 2\.0 MiB in [0-9.]+ s \([0-9.]+ ([KMG]i)?B/s\), verified", lines[1])
    assert len(lines) == 2

    weights.cached_path(ref.sha256).unlink()  # type: ignore[union-attr]
    with TransferProgress(quiet=True) as progress:
        weights.ensure([ref], progress=progress)
    assert capsys.readouterr().err == ""
    assert weights.cached_path(ref.sha256) is not None
