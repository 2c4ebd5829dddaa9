"""What every remote store promises, run against each kind that can run here:

- file: a directory;
- s3: moto's S3 emulator on 127.0.0.1 (the real AWS cannot be reached from here; moto is a mock of its API).

(The OCI registry store has its own module, test_oci.py, against a real registry.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cli import SHARED_CACHE, cli, failed
from modelbundle.bundler import LocalStore, StoredBundle, build, resolve_build_options
from modelbundle.errors import IntegrityError
from modelbundle.stores import TransferProgress, open_store

from ._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401
from .conftest import IrisBundles, wait_past

QUIET = TransferProgress(quiet=True)
CHANGED_BY_A_CODE_EDIT = ["RECORD", "bundle.json", "openapi.json", "src/service.py"]


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield f"file://{tmp_path / 'store'}"
    else:
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url  # for the CLI subprocesses and open_store
        try:
            yield moto.url("team/bundles")
        finally:
            os.environ.pop("AWS_ENDPOINT_URL", None)


def test_push_pull_serve_gives_the_same_answers(
    store_url: str, iris_bundles: IrisBundles, tmp_path: Path, serve_in_subprocess: object
) -> None:
    tag = iris_bundles.first.tag
    pushed = cli("push", tag, store_url, "-q", home=iris_bundles.home)
    assert pushed.returncode == 0, pushed.stderr
    home = tmp_path / "home"
    pulled = cli("pull", f"{store_url}/{tag}", "-q", home=home)
    assert pulled.returncode == 0, pulled.stderr
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(SHARED_CACHE)}
    with serve_in_subprocess(tag, env=env) as server:  # type: ignore[operator]
        response = server.post("/predict", json={"x": iris_bundles.rows})
    assert response.status_code == 200, response.text
    assert response.json() == iris_bundles.expected


def test_a_code_only_change_sends_only_the_changed_blobs(store_url: str, iris_bundles: IrisBundles, tmp_path: Path) -> None:
    store = open_store(store_url)
    first = store.push(iris_bundles.first, QUIET)
    second = store.push(iris_bundles.code_change, QUIET)
    assert sorted(second.sent) == CHANGED_BY_A_CODE_EDIT
    assert second.sent_blobs == 4 < first.sent_blobs
    _, pulled = store.pull("iris", iris_bundles.code_change.manifest.version, LocalStore(tmp_path / "home"), QUIET)
    assert pulled.sent_blobs == first.sent_blobs  # an empty local store: everything comes down


def test_pull_without_a_version_takes_the_latest_built(
    store_url: str, iris_bundles: IrisBundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # built last, but first by its version string: only the build time can pick it
    wait_past(iris_bundles.first.manifest.created_at, iris_bundles.code_change.manifest.created_at)
    monkeypatch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
    service = f"{iris_bundles.project}/service.py:IrisClassifier"
    newest = build(resolve_build_options({"service": service, "version": "00-newest", "quiet": True}, iris_bundles.project), LocalStore(tmp_path / "built"))
    store = open_store(store_url)
    for bundle in (newest, iris_bundles.code_change, iris_bundles.first):
        store.push(bundle, QUIET)
    assert store.latest("iris") == "00-newest"

    home = tmp_path / "home"
    pulled = cli("pull", f"{store_url}/iris", home=home)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[0] == f"the latest iris in {store_url} is iris:00-newest"
    assert [b.tag for b in LocalStore(home).list()] == ["iris:00-newest"]
    assert f"no bundle named 'nope' in {store_url}; bundles there: iris" in failed(cli("pull", f"{store_url}/nope", home=home))


def test_a_corrupted_blob_fails_the_pull_with_its_digest(
    store_url: str, iris_bundles: IrisBundles, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = open_store(store_url)
    store.push(iris_bundles.first, QUIET)
    digest = _record_digest(iris_bundles.first, "artifacts/model/model.joblib")
    _corrupt(store_url, f"blobs/sha256/{digest}", request)
    home = tmp_path / "home"
    with pytest.raises(IntegrityError, match=f"blob sha256:{digest} .*corrupted"):
        store.pull("iris", iris_bundles.first.manifest.version, LocalStore(home), QUIET)
    assert LocalStore(home).list() == []
    assert not any((home / "tmp").iterdir())


def test_a_push_killed_midway_leaves_no_version_and_a_second_push_completes_it(
    tmp_path: Path, big_bundle: tuple[Path, StoredBundle]
) -> None:
    home, bundle = big_bundle
    root = tmp_path / "store"
    url = f"file://{root}"
    env = {**os.environ, "MODELBUNDLE_HOME": str(home)}
    pusher = subprocess.Popen([sys.executable, "-m", "modelbundle", "push", bundle.tag, url, "-q"], env=env)
    blob_dir = root / "blobs" / "sha256"
    deadline = time.monotonic() + 60
    # stop it once some blob is complete and the next (the 48 MiB one) is being written; a partial
    # alone is not enough: it may be the first, small blob caught before its rename
    while not _a_blob_done_and_one_partial(blob_dir):
        assert pusher.poll() is None, "the push ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    pusher.send_signal(signal.SIGKILL)
    pusher.wait()

    store = open_store(url)
    assert store.list() == []  # no index was written: the bundle does not exist there
    report = store.push(bundle, QUIET)
    assert report.skipped_blobs >= 1  # what the killed push completed is not sent again
    assert [b.version for b in store.list()] == [bundle.manifest.version]
    pulled, _ = store.pull(bundle.manifest.name, bundle.manifest.version, LocalStore(tmp_path / "home"), QUIET)
    assert (pulled.path / "RECORD").read_bytes() == (bundle.path / "RECORD").read_bytes()


def test_an_s3_server_killed_midway_fails_the_push_in_one_line_and_a_retry_completes(
    moto_s3: MotoS3, big_bundle: tuple[Path, StoredBundle]
) -> None:
    home, bundle = big_bundle
    env = {"AWS_ENDPOINT_URL": moto_s3.endpoint_url}
    url = moto_s3.url("b")
    pusher = subprocess.Popen(
        [sys.executable, "-m", "modelbundle", "push", bundle.tag, url, "-q"],
        env={**os.environ, **env, "MODELBUNDLE_HOME": str(home)}, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not any(k.startswith("b/blobs/") for k in moto_s3.keys()):  # noqa: SIM118 - a method, not a dict
        assert pusher.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    moto_s3.kill()
    _, stderr = pusher.communicate(timeout=120)
    assert pusher.returncode == 1
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    moto_s3.restart()  # moto keeps objects in memory: the restarted store is empty
    assert open_store(url, endpoint_url=moto_s3.endpoint_url).list() == []
    retried = cli("push", bundle.tag, url, "-q", home=home, env=env)
    assert retried.returncode == 0, retried.stderr
    assert [b.version for b in open_store(url, endpoint_url=moto_s3.endpoint_url).list()] == [bundle.manifest.version]


def test_wrong_s3_credentials_give_one_line(moto_s3: MotoS3, iris_bundles: IrisBundles) -> None:
    _allowed, stranger = moto_s3.require_credentials()
    env = {
        "AWS_ENDPOINT_URL": moto_s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": stranger.access_key_id,
        "AWS_SECRET_ACCESS_KEY": stranger.secret_access_key,
    }
    result = cli("push", iris_bundles.first.tag, moto_s3.url("x"), "-q", home=iris_bundles.home, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: S3 rejected the credentials") and result.stderr.count("\n") == 1, result.stderr


def _a_blob_done_and_one_partial(blob_dir: Path) -> bool:
    names = [p.name for p in blob_dir.iterdir()] if blob_dir.is_dir() else []
    partial = [n for n in names if n.startswith(".partial-")]
    return bool(partial) and len(names) > len(partial)


def _record_digest(bundle: StoredBundle, path: str) -> str:
    for line in (bundle.path / "RECORD").read_text().splitlines():
        name, digest, _ = line.rsplit(",", 2)
        if name == path:
            return digest.removeprefix("sha256=")
    raise AssertionError(f"{path} not in RECORD")


def _corrupt(store_url: str, key: str, request: pytest.FixtureRequest) -> None:
    if store_url.startswith("file://"):
        path = Path(store_url.removeprefix("file://")) / key
        data = bytearray(path.read_bytes())
        data[10] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    prefix = store_url.removeprefix(f"s3://{moto.bucket}/")
    client = moto.client()
    full_key = f"{prefix}/{key}"
    data = bytearray(client.get_object(Bucket=moto.bucket, Key=full_key)["Body"].read())
    data[10] ^= 0xFF
    client.put_object(Bucket=moto.bucket, Key=full_key, Body=bytes(data))
