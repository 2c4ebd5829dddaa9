"""The weights cache with file:// sources: fetched once, verified, atomic, resumed, offline, directories."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelbundle import weights
from modelbundle.errors import ArtifactError, IntegrityError
from modelbundle.weights import WeightRef


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
    (tmp_path / "weights.bin").write_bytes(b"the tampered weights")
    got = hashlib.sha256(b"the tampered weights").hexdigest()
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
