"""The directory store (file:///path): content-addressed blobs, the index written last, verified pulls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.cli import cli
from modelbundle.bundler import LocalStore
from modelbundle.errors import BundleNotFound, IntegrityError, StoreError
from modelbundle.stores import TransferProgress, open_store, split_bundle_url

from .conftest import IrisBundles


def _blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()} if (root / "blobs").is_dir() else set()


def test_push_then_pull_into_an_empty_home_gives_the_same_files(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    quiet = TransferProgress(quiet=True)
    report = store.push(iris_bundles.first, quiet)
    assert report.sent_blobs == len(_blob_files(tmp_path / "store")) > 0
    local = LocalStore(tmp_path / "home")
    pulled, pull_report = store.pull(iris_bundles.first.manifest.name, iris_bundles.first.manifest.version, local, quiet)
    assert pull_report.sent_blobs > 0 and pull_report.skipped_blobs == 0
    assert (pulled.path / "RECORD").read_text() == (iris_bundles.first.path / "RECORD").read_text()
    assert (pulled.path / "bundle.json").read_bytes() == (iris_bundles.first.path / "bundle.json").read_bytes()


def test_a_code_only_change_uploads_only_changed_blobs(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    quiet = TransferProgress(quiet=True)
    store.push(iris_bundles.first, quiet)
    before = _blob_files(root)
    report = store.push(iris_bundles.code_change, quiet)
    new_blobs = _blob_files(root) - before
    # the service source, the manifest, openapi.json (docstring) and RECORD changed; model and lock did not
    assert sorted(report.sent) == ["RECORD", "bundle.json", "openapi.json", "src/service.py"]
    assert len(new_blobs) == report.sent_blobs == 4
    assert "artifacts/model/model.joblib" not in report.sent
    assert report.skipped_bytes > report.sent_bytes


def test_pull_reuses_files_the_local_store_has(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    quiet = TransferProgress(quiet=True)
    store.push(iris_bundles.first, quiet)
    store.push(iris_bundles.code_change, quiet)
    local = LocalStore(tmp_path / "home")
    store.pull(iris_bundles.first.manifest.name, iris_bundles.first.manifest.version, local, quiet)
    _, report = store.pull(iris_bundles.code_change.manifest.name, iris_bundles.code_change.manifest.version, local, quiet)
    assert sorted(report.sent) == ["RECORD", "bundle.json", "openapi.json", "src/service.py"]
    assert report.skipped_blobs > 0


def test_a_bundle_is_visible_only_once_its_index_is_written(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    quiet = TransferProgress(quiet=True)
    store.push(iris_bundles.first, quiet)
    index = root / "bundles" / iris_bundles.first.manifest.name / f"{iris_bundles.first.manifest.version}.json"
    index.unlink()  # as if the push stopped after the blobs, before the index
    assert store.list() == []
    with pytest.raises(BundleNotFound, match="no bundle named 'iris' there"):
        store.pull("iris", iris_bundles.first.manifest.version, LocalStore(tmp_path / "home"), quiet)
    report = store.push(iris_bundles.first, quiet)  # running it again completes it, uploading nothing twice
    assert report.sent_blobs == 0
    assert [(b.name, b.version) for b in store.list()] == [("iris", iris_bundles.first.manifest.version)]


def test_a_corrupted_blob_fails_the_pull_and_leaves_the_local_store_unchanged(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    quiet = TransferProgress(quiet=True)
    store.push(iris_bundles.first, quiet)
    index = json.loads((root / "bundles" / "iris" / f"{iris_bundles.first.manifest.version}.json").read_text())
    model = next(f for f in index["files"] if f["path"] == "artifacts/model/model.joblib")
    blob = root / "blobs" / "sha256" / model["sha256"]
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    home = tmp_path / "home"
    with pytest.raises(IntegrityError, match=f"blob sha256:{model['sha256']} \\(artifacts/model/model.joblib\\).*corrupted"):
        store.pull("iris", iris_bundles.first.manifest.version, LocalStore(home), quiet)
    assert LocalStore(home).list() == []
    assert not any((home / "tmp").iterdir())


def test_an_index_naming_a_path_outside_the_bundle_is_refused(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    store.push(iris_bundles.first, TransferProgress(quiet=True))
    index_path = root / "bundles" / "iris" / f"{iris_bundles.first.manifest.version}.json"
    index = json.loads(index_path.read_text())
    index["files"][0]["path"] = "../../escaped"
    index_path.write_text(json.dumps(index))
    with pytest.raises(IntegrityError, match=r"refusing file '\.\./\.\./escaped'"):
        store.pull("iris", iris_bundles.first.manifest.version, LocalStore(tmp_path / "home"), TransferProgress(quiet=True))
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "not a store URL"),
        ("file://relative/path", "file:///absolute/path"),
        ("s3://", "s3://bucket"),
        ("oci://localhost:5000", "oci://host\\[:port\\]/namespace"),
    ],
)
def test_bad_store_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("oci://localhost:5000/models/iris:3f2a", ("oci://localhost:5000/models", "iris", "3f2a")),
        ("file:///srv/bundles/iris:v1", ("file:///srv/bundles", "iris", "v1")),
        ("s3://bucket/prefix/deep/iris:abc", ("s3://bucket/prefix/deep", "iris", "abc")),
        ("oci://localhost:5000/models/iris", ("oci://localhost:5000/models", "iris", None)),  # the latest
    ],
)
def test_pull_references_split_into_store_name_and_version(ref: str, expected: tuple[str, str, str | None]) -> None:
    assert split_bundle_url(ref) == expected


@pytest.mark.parametrize("ref", ["iris:3f2a", "iris", "file:///iris", "oci://host/ns/iris:"])
def test_bad_pull_references_are_refused(ref: str) -> None:
    with pytest.raises(StoreError, match=r"STORE/NAME\[:VERSION\]"):
        split_bundle_url(ref)


def test_cli_push_list_pull(iris_bundles: IrisBundles, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    tag = iris_bundles.first.tag
    pushed = cli("push", tag, url, home=iris_bundles.home)
    assert pushed.returncode == 0, pushed.stderr
    assert f"pushed {tag} to {url}" in pushed.stdout
    listed = cli("list", "--remote", url, "--json", home=iris_bundles.home)
    assert json.loads(listed.stdout) == [{"name": "iris", "version": iris_bundles.first.manifest.version}]
    home = tmp_path / "home"
    pulled = cli("pull", f"{url}/{tag}", home=home)
    assert pulled.returncode == 0, pulled.stderr
    assert f"pulled {tag}" in pulled.stdout
    missing = cli("pull", f"{url}/iris:nope", home=home)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no bundle iris:nope") and missing.stderr.count("\n") == 1
