"""The OCI registry store (oci://host/namespace) against a real docker-registry on 127.0.0.1.

Bundles are small pickle services whose only requirement is modelbundle, built
in-process with the shared lock cache; "big" carries a 6 MiB random artifact
for the chunked and interrupted uploads.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import socket
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.cli import SHARED_CACHE, cli
from modelbundle.bundler import (
    BuildOptions,
    BundleManifest,
    LocalStore,
    StoredBundle,
    build_packed,
    verify_record,
)
from modelbundle.bundler._record import write_record
from modelbundle.errors import (
    AuthenticationError,
    BundleNotFound,
    IntegrityError,
    RemoteStoreError,
    StoreError,
)
from modelbundle.stores import RemoteBundle, TransferProgress
from modelbundle.stores import _registry as registry_module
from modelbundle.stores._layout import BundleFile, Part
from modelbundle.stores._oci import OCIStore
from modelbundle.stores._oci_layer import compress_level, extract_layer, write_layer
from modelbundle.stores._progress import Advance

from ._registry_fixture import (  # noqa: F401 - the fixtures are used by name
    PASSWORD,
    USER,
    Registry,
    TokenRegistry,
    htpasswd_registry_fixture,
    registry_fixture,
    token_registry_fixture,
)
from .conftest import IrisBundles, wait_past

QUIET = TransferProgress(quiet=True)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ALL_PARTS = ["bundle", "src", "env", "artifacts/model", "config"]
#: small enough that "big" goes up in many PATCH requests
SMALL_CHUNK = 512 * 1024

SERVICE = '''\
from modelbundle import Artifact, Service, api


class Scaler(Service):
    """Multiplies numbers by the model's factor."""

    model = Artifact("pickle")

    @api
    def predict(self, x: list[float]) -> list[float]:
        return [v * self.model["factor"] for v in x]
'''
#: the second version: the same model and requirements, other code
SERVICE_CHANGED = SERVICE.replace('[v * self.model["factor"] for v in x]', '[self.model["factor"] * v for v in x]')


@dataclass(frozen=True)
class Bundles:
    first: StoredBundle
    code_change: StoredBundle  # same artifact and environment
    big: StoredBundle  # a 6 MiB incompressible artifact


def _build(project: Path, source: str, model: object, name: str, store: LocalStore, version: str | None = None) -> StoredBundle:
    """Write the service module into ``project``, import it, and build it with ``model`` bound."""
    project.mkdir(parents=True)
    (project / "scaler_service.py").write_text(source)
    spec = importlib.util.spec_from_file_location("scaler_service", project / "scaler_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scaler_service"] = module  # the bundler finds the source through sys.modules
    try:
        spec.loader.exec_module(module)
        return build_packed(module.Scaler.pack(model=model), BuildOptions(name=name, version=version, quiet=True), store)
    finally:
        del sys.modules["scaler_service"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("oci-bundles")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))  # requirements locked once per session
        store = LocalStore(root / "home")
        model = {"factor": 3.0}
        first = _build(root / "v1", SERVICE, model, "scaler", store)
        changed = _build(root / "v2", SERVICE_CHANGED, model, "scaler", store)
        big = _build(root / "big", SERVICE, {"factor": 2.0, "weights": random.Random(0).randbytes(6 * 1024 * 1024)}, "big", store)
    assert first.manifest.version != changed.manifest.version
    return Bundles(first, changed, big)


@pytest.fixture(autouse=True)
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no credentials from this machine's environment or ~/.docker."""
    monkeypatch.delenv("MODELBUNDLE_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("MODELBUNDLE_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@contextmanager
def oci(url: str, **kwargs: bool) -> Iterator[OCIStore]:
    store = OCIStore(url, **kwargs)
    try:
        yield store
    finally:
        store.close()


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def store_state(home: Path) -> tuple[list[str], list[str]]:
    """(files under bundles/, entries under tmp/): what a failed pull must leave as it was."""
    bundles = home / "bundles"
    files = sorted(p.relative_to(home).as_posix() for p in bundles.rglob("*")) if bundles.is_dir() else []
    leftovers = sorted(p.name for p in (home / "tmp").iterdir()) if (home / "tmp").is_dir() else []
    return files, leftovers


def get_manifest(registry: Registry, bundle: StoredBundle) -> httpx.Response:
    m = bundle.manifest
    return httpx.get(f"http://{registry.host}/v2/models/{m.name}/manifests/{m.version}", headers={"Accept": OCI_MANIFEST})


def layer_digest(registry: Registry, bundle: StoredBundle, title: str) -> str:
    layers = get_manifest(registry, bundle).json()["layers"]
    return str(next(layer["digest"] for layer in layers if layer["annotations"]["org.opencontainers.image.title"] == title))


# -- push and pull -------------------------------------------------------------------------------
def test_push_then_pull_into_an_empty_home_gives_the_same_files(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "home")
    with oci(registry.url()) as store:
        pushed = store.push(bundles.first, QUIET)
        pulled, report = store.pull("scaler", bundles.first.manifest.version, local, QUIET)
    assert pushed.sent == ALL_PARTS and pushed.skipped_blobs == 0
    assert sorted(report.sent) == sorted(ALL_PARTS) and report.skipped_blobs == 0
    assert pulled.path == local.bundles / "scaler" / bundles.first.manifest.version
    verify_record(pulled.path)
    assert files_of(pulled.path) == files_of(bundles.first.path)
    assert store_state(local.home)[1] == []  # no staging left behind


def test_the_registry_holds_a_standard_oci_manifest(registry: Registry, bundles: Bundles) -> None:
    # what `skopeo inspect` or any OCI client reads: the manifest, its config, its layers
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
    response = get_manifest(registry, bundles.first)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(response.content).hexdigest()
    manifest = response.json()
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == "application/vnd.modelbundle.bundle.v1+json"
    assert manifest["annotations"]["dev.modelbundle.name"] == "scaler"
    bundle_json = (bundles.first.path / "bundle.json").read_bytes()
    assert manifest["config"]["mediaType"] == "application/vnd.modelbundle.bundle.config.v1+json"
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(bundle_json).hexdigest()
    config = httpx.get(f"http://{registry.host}/v2/models/scaler/blobs/{manifest['config']['digest']}")
    assert config.content == bundle_json
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]]
    assert titles == ["bundle", "src", "env", "artifacts/model"]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.modelbundle.layer.v1.tar+gzip"}

    # a layer is a deterministic tar+gzip of the part's files
    env = httpx.get(f"http://{registry.host}/v2/models/scaler/blobs/{layer_digest(registry, bundles.first, 'env')}").content
    assert env[3:8] == b"\0\0\0\0\0"  # gzip header flags and time: no file name, no time
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(env))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["env/python_version", "env/requirements.in", "env/requirements.lock"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}


def test_the_same_bundle_gives_the_same_manifest_digest(registry: Registry, bundles: Bundles) -> None:
    with oci(registry.url("models")) as store, oci(registry.url("mirror")) as mirror:
        store.push(bundles.first, QUIET)
        mirror.push(bundles.first, QUIET)
    version = bundles.first.manifest.version
    digests = {
        httpx.head(f"http://{registry.host}/v2/{ns}/scaler/manifests/{version}", headers={"Accept": OCI_MANIFEST}).headers[
            "Docker-Content-Digest"
        ]
        for ns in ("models", "mirror")
    }
    assert len(digests) == 1


def test_a_code_change_uploads_only_the_changed_layers(registry: Registry, bundles: Bundles) -> None:
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        before_blobs, before_uploads = registry.blob_digests(), len(registry.requests("POST", "/blobs/uploads/"))
        report = store.push(bundles.code_change, QUIET)
    # the code and the manifest changed; the model and the environment did not
    assert report.sent == ["bundle", "src", "config"]
    assert report.skipped_blobs == 2 and report.sent_blobs == 3
    assert len(registry.requests("POST", "/blobs/uploads/")) - before_uploads == 3
    new = registry.blob_digests() - before_blobs
    assert len(new) == 4  # those three, and the new manifest
    assert layer_digest(registry, bundles.first, "artifacts/model") == layer_digest(registry, bundles.code_change, "artifacts/model")
    assert sorted(registry.tags("models/scaler")) == sorted([bundles.first.manifest.version, bundles.code_change.manifest.version])


def test_pull_downloads_only_the_layers_the_local_store_lacks(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "home")
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        store.push(bundles.code_change, QUIET)
        store.pull("scaler", bundles.first.manifest.version, local, QUIET)
        downloads_before = len(registry.requests("GET", "/blobs/"))
        pulled, report = store.pull("scaler", bundles.code_change.manifest.version, local, QUIET)
    assert report.sent == ["config", "bundle", "src"]
    assert report.skipped_blobs == 2
    assert len(registry.requests("GET", "/blobs/")) - downloads_before == 3
    verify_record(pulled.path)
    assert files_of(pulled.path) == files_of(bundles.code_change.path)


def test_pushing_the_same_bundle_again_uploads_nothing(registry: Registry, bundles: Bundles) -> None:
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        uploads = len(registry.requests("POST"))
        report = store.push(bundles.first, QUIET)
    assert report.sent == [] and report.sent_blobs == 0
    assert report.skipped_blobs == 5
    assert len(registry.requests("POST")) == uploads
    assert len(registry.requests("PUT", "/manifests/")) == 1


def test_a_version_that_holds_other_content_is_not_overwritten(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    # the changed code under the first version's name: what an explicit --version reused by mistake gives
    version = bundles.first.manifest.version
    impostor = tmp_path / "home" / "bundles" / "scaler" / version
    shutil.copytree(bundles.code_change.path, impostor)
    manifest = BundleManifest.model_validate_json((impostor / "bundle.json").read_bytes())
    (impostor / "bundle.json").write_bytes(manifest.model_copy(update={"version": version}).dump())
    write_record(impostor)
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        with pytest.raises(RemoteStoreError, match=rf"/models/scaler:{version} already exists with different content"):
            store.push(LocalStore(tmp_path / "home").get(f"scaler:{version}"), QUIET)
    assert len(registry.requests("PUT", "/manifests/")) == 1


# -- large blobs and interruptions -------------------------------------------------------------------
@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "MONOLITHIC_LIMIT", SMALL_CHUNK)
    monkeypatch.setattr(registry_module, "CHUNK_SIZE", SMALL_CHUNK)


def test_a_large_blob_goes_up_in_chunks(registry: Registry, bundles: Bundles, tmp_path: Path, small_chunks: None) -> None:
    local = LocalStore(tmp_path / "home")
    with oci(registry.url()) as store:
        report = store.push(bundles.big, QUIET)
        pulled, _ = store.pull("big", bundles.big.manifest.version, local, QUIET)
    artifact = registry.blob_data(layer_digest(registry, bundles.big, "artifacts/model")).stat().st_size
    assert artifact > 6 * 1024 * 1024  # random bytes do not compress
    patches = registry.requests("PATCH", "/v2/models/big/blobs/uploads/")
    assert len(patches) == -(-artifact // SMALL_CHUNK) and {r.status for r in patches} == {202}
    assert report.sent == ALL_PARTS
    assert files_of(pulled.path) == files_of(bundles.big.path)


class KillDuring(TransferProgress):
    """Quiet progress that SIGKILLs the registry once ``after`` bytes of ``label`` went up."""

    def __init__(self, registry: Registry, label: str, after: int) -> None:
        super().__init__(quiet=True)
        self.registry, self.label, self.after = registry, label, after

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        sent = 0
        proc = self.registry.proc
        assert proc is not None

        def advance(n: int) -> None:
            nonlocal sent
            sent += n
            if description.endswith(self.label) and sent >= self.after and proc.poll() is None:
                self.registry.kill()

        yield advance


def test_an_interrupted_push_leaves_no_version_and_a_second_push_completes_it(
    registry: Registry, bundles: Bundles, tmp_path: Path, small_chunks: None
) -> None:
    version = bundles.big.manifest.version
    with oci(registry.url()) as store, pytest.raises(RemoteStoreError, match=r"registry 127\.0\.0\.1:\d+"):
        store.push(bundles.big, KillDuring(registry, "artifacts/model", after=2 * SMALL_CHUNK))
    assert registry.proc is not None and registry.proc.returncode == -9  # killed mid-upload, as a crash would
    registry.start()  # the same storage: whatever the first push left there
    assert registry.tags("models/big") == []
    with oci(registry.url()) as store:
        assert store.list() == []
        with pytest.raises(BundleNotFound, match=rf"^no bundle big:{version} in oci://.*/models; no bundle named 'big' there$"):
            store.pull("big", version, LocalStore(tmp_path / "home"), QUIET)
        report = store.push(bundles.big, QUIET)
        # what reached the registry before the kill is not sent again
        assert report.sent == ["artifacts/model", "config"]
        assert report.skipped_blobs == 3
        assert store.list() == [RemoteBundle("big", version)]
        pulled, _ = store.pull("big", version, LocalStore(tmp_path / "home"), QUIET)
    assert files_of(pulled.path) == files_of(bundles.big.path)


# -- integrity -------------------------------------------------------------------------------------
def test_a_corrupted_blob_fails_the_pull_and_leaves_the_local_store_unchanged(
    registry: Registry, bundles: Bundles, tmp_path: Path
) -> None:
    local = LocalStore(tmp_path / "home")
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        store.push(bundles.code_change, QUIET)
        store.pull("scaler", bundles.first.manifest.version, local, QUIET)
        before = store_state(local.home)
        digest = layer_digest(registry, bundles.code_change, "src")
        data = registry.blob_data(digest)
        damaged = bytearray(data.read_bytes())
        damaged[len(damaged) // 2] ^= 0x01
        data.write_bytes(bytes(damaged))
        with pytest.raises(IntegrityError, match=rf"layer src is corrupted in the registry: blob {digest} hashes to sha256:[0-9a-f]{{64}}"):
            store.pull("scaler", bundles.code_change.manifest.version, local, QUIET)
    assert store_state(local.home) == before
    assert before[1] == []


def test_a_damaged_local_bundle_is_not_pushed(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    copy = tmp_path / "home" / "bundles" / "scaler" / bundles.first.manifest.version
    shutil.copytree(bundles.first.path, copy)
    source = copy / "src" / "scaler_service.py"
    source.write_text(source.read_text().replace("factor", "f"))
    with oci(registry.url()) as store, pytest.raises(IntegrityError, match=r"src/scaler_service.py does not match its RECORD digest"):
        store.push(LocalStore(tmp_path / "home").get(bundles.first.tag), QUIET)
    assert registry.tags("models/scaler") == []
    assert registry.requests("PUT", "/manifests/") == []


def test_a_layer_cannot_write_outside_the_bundle(tmp_path: Path) -> None:
    # what a hostile registry could serve under a valid digest
    for name, kind in [("../escape.txt", tarfile.REGTYPE), ("/etc/escape", tarfile.REGTYPE), ("src/link", tarfile.SYMTYPE)]:
        blob = tmp_path / "layer.tar.gz"
        with gzip.open(blob, "wb") as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        staging = tmp_path / "staging"
        staging.mkdir(exist_ok=True)
        with pytest.raises(IntegrityError, match=rf"^layer src: refusing member {name!r}"):
            extract_layer(blob, staging, lambda path: True, "src")
        assert list(staging.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def test_a_file_not_in_the_part_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "layer.tar.gz"
    with gzip.open(blob, "wb") as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("src/extra.py"), io.BytesIO(b""))
    with pytest.raises(IntegrityError, match=r"refusing 'src/extra.py': it is not a file of this part"):
        extract_layer(blob, tmp_path, {"src/service.py"}.__contains__, "src")


def test_pulling_an_image_that_is_not_a_bundle_is_refused(registry: Registry, tmp_path: Path) -> None:
    base = f"http://{registry.host}/v2/models/alpine"
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    started = httpx.post(f"{base}/blobs/uploads/")
    httpx.put(httpx.URL(f"http://{registry.host}").join(started.headers["Location"]).copy_merge_params({"digest": digest}), content=config)
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(config)}, "layers": []}
    assert httpx.put(f"{base}/manifests/3.19", content=json.dumps(image), headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    with oci(registry.url()) as store, pytest.raises(RemoteStoreError, match=r"models/alpine:3.19 is not a modelbundle bundle \(artifactType none, config application/vnd.oci.image.config.v1\+json\)"):
        store.pull("alpine", "3.19", LocalStore(tmp_path / "home"), QUIET)
    assert store_state(tmp_path / "home") == ([], [])


# -- list and misses -------------------------------------------------------------------------------
def test_list_returns_the_bundles_of_the_namespace(registry: Registry, bundles: Bundles) -> None:
    with oci(registry.url("team/models")) as store, oci(registry.url("other")) as other:
        assert store.list() == []
        store.push(bundles.first, QUIET)
        store.push(bundles.code_change, QUIET)
        other.push(bundles.first, QUIET)
        listed = store.list()
        other_listed = other.list()
    assert listed == sorted([RemoteBundle("scaler", bundles.first.manifest.version), RemoteBundle("scaler", bundles.code_change.manifest.version)], key=lambda b: b.version)
    assert other_listed == [RemoteBundle("scaler", bundles.first.manifest.version)]


def test_pull_without_a_version_takes_the_latest_built(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    wait_past(bundles.first.manifest.created_at, bundles.code_change.manifest.created_at)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
        # built last, but first by its version string: only the build time can pick it
        newest = _build(tmp_path / "newest", SERVICE_CHANGED, {"factor": 3.0}, "scaler", LocalStore(tmp_path / "built"), version="00-newest")
    with oci(registry.url()) as store:
        for bundle in (newest, bundles.code_change, bundles.first):
            store.push(bundle, QUIET)
        assert store.latest("scaler") == "00-newest"
    home = tmp_path / "home"
    pulled = cli("pull", registry.url("models/scaler"), home=home)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[0] == f"the latest scaler in {registry.url()} is scaler:00-newest"
    assert [b.tag for b in LocalStore(home).list()] == ["scaler:00-newest"]


def test_an_unknown_version_names_the_versions_there(registry: Registry, bundles: Bundles, tmp_path: Path) -> None:
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        with pytest.raises(BundleNotFound, match=rf"^no bundle scaler:nope in oci://127\.0\.0\.1:\d+/models; versions there: {bundles.first.manifest.version}$"):
            store.pull("scaler", "nope", LocalStore(tmp_path / "home"), QUIET)


def test_an_unreachable_registry_is_a_one_line_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with oci(f"oci://127.0.0.1:{port}/models") as store, pytest.raises(RemoteStoreError) as caught:
        store.list()
    assert str(caught.value).startswith(f"listing the repositories: cannot connect to registry 127.0.0.1:{port} (")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oci://127.0.0.1:5000", "an OCI store URL is oci://host"),
        ("oci://127.0.0.1:5000/Models", "the namespace 'Models' must be lowercase"),
    ],
)
def test_a_bad_store_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        OCIStore(url)


@pytest.mark.parametrize(
    ("url", "insecure", "scheme"),
    [
        ("oci://localhost:5000/m", False, "http"),
        ("oci://127.0.0.2/m", False, "http"),
        ("oci://[::1]:5000/m", False, "http"),
        ("oci://registry.example.com/m", False, "https"),
        ("oci://10.0.0.1:5000/m", False, "https"),
        ("oci://registry.example.com/m", True, "http"),
    ],
)
def test_plain_http_only_for_loopback_hosts_or_when_insecure(url: str, insecure: bool, scheme: str) -> None:
    with oci(url, insecure=insecure) as store:
        assert ("https" if store.registry.secure else "http") == scheme


# -- authentication ------------------------------------------------------------------------------------
def test_basic_credentials_from_the_environment(
    htpasswd_registry: Registry, bundles: Bundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_PASSWORD", PASSWORD)
    with oci(htpasswd_registry.url()) as store:
        store.push(bundles.first, QUIET)
        assert store.list() == [RemoteBundle("scaler", bundles.first.manifest.version)]
        pulled, _ = store.pull("scaler", bundles.first.manifest.version, LocalStore(tmp_path / "home"), QUIET)
    assert files_of(pulled.path) == files_of(bundles.first.path)
    # one challenge, then Basic up front: not a 401 per request
    assert len(htpasswd_registry.requests(None, "/v2/")) > 10
    assert [r.path for r in htpasswd_registry.requests() if r.status == 401 and r.path != "/v2/"] == [
        f"/v2/models/scaler/manifests/{bundles.first.manifest.version}"
    ]


@pytest.mark.parametrize("key", ["{host}", "http://{host}"])  # docker login writes the first; other tools the second
def test_basic_credentials_from_the_docker_config(
    htpasswd_registry: Registry, bundles: Bundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auths = {key.format(host=htpasswd_registry.host): {"auth": auth}, "other.example.com": {"auth": "bm90OnRoaXM="}}
    (config_dir / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    with oci(htpasswd_registry.url()) as store:
        store.push(bundles.first, QUIET)
    basic = {"Authorization": f"Basic {auth}"}
    assert htpasswd_registry.tags("models/scaler", headers=basic) == [bundles.first.manifest.version]


def test_wrong_credentials_are_a_one_line_error(htpasswd_registry: Registry, bundles: Bundles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_PASSWORD", "wrong")
    with oci(htpasswd_registry.url()) as store, pytest.raises(AuthenticationError) as caught:
        store.push(bundles.first, QUIET)
    assert str(caught.value) == (
        f"registry {htpasswd_registry.host} rejected the credentials for user {USER} (401); "
        "check $MODELBUNDLE_REGISTRY_USERNAME and $MODELBUNDLE_REGISTRY_PASSWORD"
    )


def test_no_credentials_says_how_to_give_them(htpasswd_registry: Registry) -> None:
    with oci(htpasswd_registry.url()) as store, pytest.raises(AuthenticationError, match=r"requires credentials \(401\); set \$MODELBUNDLE_REGISTRY_USERNAME"):
        store.list()


def test_bearer_tokens_from_the_registry_token_service(
    token_registry: TokenRegistry, bundles: Bundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_PASSWORD", PASSWORD)
    registry = token_registry.registry
    with oci(registry.url()) as store:
        store.push(bundles.first, QUIET)
        assert store.list() == [RemoteBundle("scaler", bundles.first.manifest.version)]
        pulled, _ = store.pull("scaler", bundles.first.manifest.version, LocalStore(tmp_path / "home"), QUIET)
    assert files_of(pulled.path) == files_of(bundles.first.path)
    scopes = {scope for _user, requested in token_registry.tokens.issued for scope in requested}
    assert {"repository:models/scaler:pull,push", "registry:catalog:*"} <= scopes
    assert {user for user, _ in token_registry.tokens.issued} == {USER}


def test_bearer_tokens_with_wrong_credentials(token_registry: TokenRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("MODELBUNDLE_REGISTRY_PASSWORD", "wrong")
    with oci(token_registry.registry.url()) as store, pytest.raises(AuthenticationError, match=rf"^registry {token_registry.registry.host} rejected the credentials for user {USER} \(401\)"):
        store.list()


def test_a_part_that_does_not_compress_is_stored(tmp_path: Path) -> None:
    # deflating hundreds of MB of model weights costs seconds and saves little: such a part is stored
    (tmp_path / "artifacts/model").mkdir(parents=True)
    (tmp_path / "artifacts/model/random.bin").write_bytes(random.Random(1).randbytes(2 * 1024 * 1024))
    (tmp_path / "artifacts/model/zeros.bin").write_bytes(bytes(2 * 1024 * 1024))
    for name, expected in [("random.bin", 0), ("zeros.bin", 6)]:
        data = (tmp_path / "artifacts/model" / name).read_bytes()
        part = Part("artifacts/model", (BundleFile(f"artifacts/model/{name}", hashlib.sha256(data).hexdigest(), len(data)),))
        assert compress_level(tmp_path, part) == expected
        digest, size = write_layer(tmp_path, part, tmp_path / f"{name}.tar.gz")
        assert (size > len(data)) == (expected == 0)
        with tarfile.open(tmp_path / f"{name}.tar.gz") as tar:  # valid tar+gzip either way
            assert tar.extractfile(f"artifacts/model/{name}").read() == data  # type: ignore[union-attr]
        assert write_layer(tmp_path, part, tmp_path / "again.tar.gz") == (digest, size)  # deterministic


# -- through the command line ----------------------------------------------------------------------------
def test_push_pull_serve_through_the_cli_gives_the_same_answers(
    registry: Registry, iris_bundles: IrisBundles, tmp_path: Path, serve_in_subprocess: Any
) -> None:
    tag = iris_bundles.first.tag
    pushed = cli("push", tag, registry.url(), "-q", home=iris_bundles.home)
    assert pushed.returncode == 0, pushed.stderr
    listed = cli("list", "--remote", registry.url(), "--json", home=tmp_path / "home")
    assert json.loads(listed.stdout) == [{"name": "iris", "version": iris_bundles.first.manifest.version}]
    home = tmp_path / "home"
    pulled = cli("pull", f"{registry.url()}/{tag}", "-q", home=home)
    assert pulled.returncode == 0, pulled.stderr
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(SHARED_CACHE)}
    with serve_in_subprocess(tag, env=env) as server:
        response = server.post("/predict", json={"x": iris_bundles.rows})
    assert response.status_code == 200, response.text
    assert response.json() == iris_bundles.expected


def test_wrong_credentials_in_the_cli_are_one_line_without_a_traceback(htpasswd_registry: Registry, bundles: Bundles) -> None:
    env = {"MODELBUNDLE_REGISTRY_USERNAME": USER, "MODELBUNDLE_REGISTRY_PASSWORD": "wrong"}
    home = bundles.first.path.parents[2]
    result = cli("push", bundles.first.tag, htpasswd_registry.url(), "-q", home=home, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: registry {htpasswd_registry.host} rejected the credentials for user {USER} (401); "
        "check $MODELBUNDLE_REGISTRY_USERNAME and $MODELBUNDLE_REGISTRY_PASSWORD\n"
    )
