"""``oci://host[:port]/namespace``: bundles as OCI artifacts in a registry.

Each bundle name is the repository ``namespace/NAME`` and each version its tag.
A bundle is an image manifest whose config is ``bundle.json`` and whose layers
are the bundle's parts (bundle, src, env, one per artifact) as deterministic
tar+gzip, so an unchanged model is an unchanged layer the registry already
has. The manifest is written last: a tag appears only once all its blobs are
there, and running an interrupted push again finishes it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pydantic import ValidationError

from ..bundler import (
    MANIFEST_FILE,
    RECORD_FILE,
    BundleManifest,
    LocalStore,
    StoredBundle,
    verify_record,
)
from ..errors import BundleNotFound, IntegrityError, RemoteStoreError, StoreError
from ._base import BaseStore, RemoteBundle, TransferReport
from ._layout import Part, bundle_files, part_of, split_parts
from ._local import LocalFiles
from ._oci_layer import extract_layer, part_digest, write_layer
from ._oci_manifest import (
    ACCEPTED_MEDIA_TYPES,
    ARTIFACT_TYPE,
    BUNDLE_NAME,
    CONFIG_MEDIA_TYPE,
    CREATED,
    EMPTY_CONFIG,
    EMPTY_JSON,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    PART_DIGEST,
    TITLE,
    VERSION,
    WEIGHTS_REPOSITORY,
    Descriptor,
    ImageManifest,
    parse_manifest,
    weights_manifest,
)
from ._progress import Advance, TransferProgress
from ._registry import RegistryClient
from ._registry_auth import find_credentials

# the distribution spec's grammar for repository path components and tags
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAMESPACE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_NAME = re.compile(rf"^{_COMPONENT}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def is_loopback(hostname: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: the registries that may speak plain HTTP without --insecure."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class OCIStore(BaseStore):
    """Bundles in an OCI registry (the distribution API): ``oci://host[:port]/namespace``.

    HTTPS, or plain HTTP for loopback hosts and when ``insecure`` is true. Credentials
    come from $MODELBUNDLE_REGISTRY_USERNAME/PASSWORD or the Docker config file.
    """

    def __init__(self, url: str, *, insecure: bool = False) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self.namespace = parts.path.strip("/")
        if parts.scheme != "oci" or not parts.netloc or not parts.hostname or not self.namespace:
            raise StoreError(f"{url!r}: an OCI store URL is oci://host[:port]/namespace")
        if not _NAMESPACE.match(self.namespace):
            raise StoreError(
                f"{url!r}: the namespace {self.namespace!r} must be lowercase letters and digits, separated by "
                "'.', '_', '-' or '/' (an OCI repository path)"
            )
        self.host = parts.netloc
        secure = not (insecure or is_loopback(parts.hostname))
        self.registry = RegistryClient(self.host, secure=secure, credentials=find_credentials(self.host))

    def close(self) -> None:
        self.registry.close()

    def repository(self, name: str) -> str:
        if not _NAME.match(name):
            raise StoreError(f"bundle name {name!r} is not valid in a registry (lowercase letters and digits, separated by '.', '_' or '-')")
        return f"{self.namespace}/{name}"

    # -- push ----------------------------------------------------------------------------------
    def push(self, bundle: StoredBundle, progress: TransferProgress) -> TransferReport:
        name, version = bundle.manifest.name, bundle.manifest.version
        repository = self.repository(name)
        parts = split_parts(bundle_files(bundle.path))
        config = (bundle.path / MANIFEST_FILE).read_bytes()
        report = TransferReport()
        if self._already_pushed(repository, version, f"{self.url}/{name}:{version}", parts, config, report):
            return report
        with tempfile.TemporaryDirectory(prefix="modelbundle-oci-") as scratch:
            layers = [self._push_part(repository, bundle.path, part, Path(scratch), progress, report) for part in parts]
            config_file = Path(scratch) / "config"
            config_file.write_bytes(config)
            config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
            self._push_blob(repository, config_file, config_digest, "config", progress, report)
        manifest = ImageManifest(
            artifactType=ARTIFACT_TYPE,
            config=Descriptor(mediaType=CONFIG_MEDIA_TYPE, digest=config_digest, size=len(config)),
            layers=layers,
            annotations={BUNDLE_NAME: name, VERSION: version, CREATED: bundle.manifest.created_at},
        )
        # last: until this PUT the registry has blobs but no tag, so no half bundle is visible
        self.registry.put_manifest(repository, version, manifest.dump(), MANIFEST_MEDIA_TYPE)
        return report

    def _push_part(
        self, repository: str, root: Path, part: Part, scratch: Path, progress: TransferProgress, report: TransferReport
    ) -> Descriptor:
        layer = scratch / "layer.tar.gz"
        digest, size = write_layer(root, part, layer)
        self._push_blob(repository, layer, digest, part.name, progress, report)
        layer.unlink()
        return Descriptor(
            mediaType=LAYER_MEDIA_TYPE, digest=digest, size=size, annotations={TITLE: part.name, PART_DIGEST: part_digest(part)}
        )

    def _push_blob(
        self, repository: str, source: Path, digest: str, label: str, progress: TransferProgress, report: TransferReport
    ) -> None:
        size = source.stat().st_size
        if self.registry.blob_exists(repository, digest):
            report.skipped_blobs += 1
            report.skipped_bytes += size
            return
        with progress.task(f"uploading {_describe(label)}", size) as advance:
            self.registry.upload_blob(repository, source, digest, advance, label=_describe(label))
        report.sent_blobs += 1
        report.sent_bytes += size
        report.sent.append(label)

    def _already_pushed(
        self, repository: str, version: str, where: str, parts: list[Part], config: bytes, report: TransferReport
    ) -> bool:
        """True if the tag holds this bundle with all its blobs; an error if it holds another one."""
        found = self.registry.manifest(repository, version, ACCEPTED_MEDIA_TYPES)
        if found is None:
            return False
        existing = parse_manifest(*found, where)
        ours = {part.name: part_digest(part) for part in parts if part.name != "bundle"}
        theirs = {layer.title: layer.annotation(PART_DIGEST) for layer in existing.layers if layer.title != "bundle"}
        if ours != theirs or not self._same_manifest(repository, existing.config, config):
            raise RemoteStoreError(
                f"{where} already exists with different content; push it under another version "
                "(bundle build --version) or delete that tag from the registry first"
            )
        # the same bundle (created_at aside): done, unless the registry lost a blob since
        blobs = [existing.config, *existing.layers]
        if not all(self.registry.blob_exists(repository, blob.digest) for blob in blobs):
            return False
        report.skipped_blobs += len(blobs)
        report.skipped_bytes += sum(blob.size for blob in blobs)
        return True

    def _same_manifest(self, repository: str, descriptor: Descriptor, config: bytes) -> bool:
        """Equal bundle manifests, created_at aside (a rebuild of the same content)."""
        if descriptor.digest == f"sha256:{hashlib.sha256(config).hexdigest()}":
            return True

        def stable(raw: bytes) -> object:
            data = json.loads(raw)
            if isinstance(data, dict):
                data.pop("created_at", None)
            return data

        try:
            return stable(self.registry.blob_bytes(repository, descriptor.digest)) == stable(config)
        except ValueError:
            return False

    # -- pull ----------------------------------------------------------------------------------
    def pull(self, name: str, version: str, local: LocalStore, progress: TransferProgress) -> tuple[StoredBundle, TransferReport]:
        repository = self.repository(name)
        where = f"{self.url}/{name}:{version}"
        manifest = self._manifest(repository, name, version, where)
        report = TransferReport()
        config_digest = self._check_config(repository, manifest, name, version, where, report)
        reusable = LocalFiles(local)
        with local.staging() as staging, local.staging() as scratch:
            # the small bundle layer first: its RECORD lists the files of every other part
            bundle_layer = _layer(manifest, "bundle", where)
            self._download_layer(repository, bundle_layer, staging, scratch, _is_bundle_file, where, progress, report)
            parts = _record_parts(staging, manifest, where)
            listed_digests = {file.path: file.sha256 for file in parts["bundle"].files}
            if f"sha256:{listed_digests.get(MANIFEST_FILE)}" != config_digest:
                raise IntegrityError(f"{where}: the config blob and the bundle layer hold different bundle.json files")
            for layer in manifest.layers:
                if layer.title == "bundle":
                    continue
                part = parts[layer.title]
                if layer.annotation(PART_DIGEST) != part_digest(part):
                    raise IntegrityError(f"{where}: layer {layer.title} is annotated with a file list that differs from RECORD")
                if _copy_from_local(part, reusable, staging):
                    report.skipped_blobs += 1
                    report.skipped_bytes += layer.size
                    continue
                listed = {file.path for file in part.files}
                self._download_layer(repository, layer, staging, scratch, listed.__contains__, where, progress, report)
            verify_record(staging)
            bundle, _created = local.commit(staging, name, version)
        return bundle, report

    def _manifest(self, repository: str, name: str, version: str, where: str) -> ImageManifest:
        if not _TAG.match(version):
            raise StoreError(f"{version!r} is not a valid bundle version (letters, digits, '.', '_', '-')")
        found = self.registry.manifest(repository, version, ACCEPTED_MEDIA_TYPES)
        if found is None:
            versions = sorted(self.registry.tags(repository))
            hint = f"; versions there: {', '.join(versions)}" if versions else f"; no bundle named {name!r} there"
            raise BundleNotFound(f"no bundle {name}:{version} in {self.url}{hint}")
        return parse_manifest(*found, where)

    def _check_config(
        self, repository: str, manifest: ImageManifest, name: str, version: str, where: str, report: TransferReport
    ) -> str:
        """Fetch bundle.json (the config) and check it names this bundle; its digest."""
        digest = manifest.config.digest
        config = self.registry.blob_bytes(repository, digest)
        actual = f"sha256:{hashlib.sha256(config).hexdigest()}"
        if actual != digest:
            raise IntegrityError(f"{where}: the config blob {digest} is corrupted in the registry: its content hashes to {actual}")
        try:
            bundle = BundleManifest.model_validate_json(config)
        except ValidationError:
            raise IntegrityError(f"{where}: the config blob is not a valid bundle.json") from None
        if (bundle.name, bundle.version) != (name, version):
            raise IntegrityError(f"{where} holds the bundle {bundle.tag}, not {name}:{version}")
        report.sent_blobs += 1
        report.sent_bytes += len(config)
        report.sent.append("config")
        return digest

    def _download_layer(
        self, repository: str, layer: Descriptor, staging: Path, scratch: Path, allowed: Callable[[str], bool],
        where: str, progress: TransferProgress, report: TransferReport,
    ) -> None:
        blob = scratch / "layer.tar.gz"
        with progress.task(f"downloading {_describe(layer.title)}", layer.size) as advance:
            actual = self.registry.download_blob(repository, layer.digest, blob, advance, label=_describe(layer.title))
        if actual != layer.digest:
            raise IntegrityError(
                f"{where}: layer {layer.title} is corrupted in the registry: blob {layer.digest} hashes to {actual}; "
                "the local store is unchanged"
            )
        extract_layer(blob, staging, allowed, layer.title)
        blob.unlink()
        report.sent_blobs += 1
        report.sent_bytes += layer.size
        report.sent.append(layer.title)

    def created_at(self, name: str, version: str) -> str:
        """From the manifest's annotation (every push sets it), else from bundle.json, the config."""
        repository = self.repository(name)
        manifest = self._manifest(repository, name, version, f"{self.url}/{name}:{version}")
        created = (manifest.annotations or {}).get(CREATED)
        if created:
            return created
        try:
            return BundleManifest.model_validate_json(self.registry.blob_bytes(repository, manifest.config.digest)).created_at
        except ValidationError:
            raise IntegrityError(f"{self.url}/{name}:{version}: the config blob is not a valid bundle.json") from None

    # -- weights --------------------------------------------------------------------------------
    def has_weight(self, digest: str) -> bool:
        return self.registry.blob_exists(self.weights_repository, f"sha256:{digest}")

    def put_weight(self, digest: str, source: Path, advance: Advance) -> None:
        """The blob, then a manifest tagged with its digest that holds it, so a registry's GC keeps it."""
        repository = self.weights_repository
        self.registry.upload_blob(repository, source, f"sha256:{digest}", advance, label="weights")
        self.registry.put_manifest(repository, digest, weights_manifest(digest, source.stat().st_size, self._empty_config(repository)), MANIFEST_MEDIA_TYPE)

    def get_weight(self, digest: str, destination: Path, advance: Advance) -> None:
        self.registry.download_blob(self.weights_repository, f"sha256:{digest}", destination, advance, label="weights")

    @property
    def weights_repository(self) -> str:
        """One repository for every bundle's weights, deeper than the bundles' so that ``list`` leaves it out."""
        return f"{self.namespace}/{WEIGHTS_REPOSITORY}"

    def _empty_config(self, repository: str) -> Descriptor:
        if not self.registry.blob_exists(repository, EMPTY_CONFIG.digest):
            with tempfile.TemporaryDirectory(prefix="modelbundle-oci-") as scratch:
                empty = Path(scratch) / "empty"
                empty.write_bytes(EMPTY_JSON)
                self.registry.upload_blob(repository, empty, EMPTY_CONFIG.digest, lambda n: None, label="the empty config")
        return EMPTY_CONFIG

    # -- list ----------------------------------------------------------------------------------
    def list(self) -> list[RemoteBundle]:
        """Every tag of every repository ``namespace/NAME`` (the namespace is assumed to hold bundles)."""
        prefix = self.namespace + "/"
        found = []
        for repository in self.registry.catalog():
            name = repository.removeprefix(prefix)
            if repository.startswith(prefix) and "/" not in name:  # deeper paths are other namespaces
                found += [RemoteBundle(name, tag) for tag in self.registry.tags(repository)]
        return sorted(found, key=lambda b: (b.name, b.version))


def _describe(label: str) -> str:
    """For messages and progress bars: "the config", "layer src"."""
    return "the config" if label == "config" else f"layer {label}"


def _is_bundle_file(path: str) -> bool:
    return "/" not in path and part_of(path) == "bundle"


def _layer(manifest: ImageManifest, title: str, where: str) -> Descriptor:
    matches = [layer for layer in manifest.layers if layer.title == title]
    if len(matches) != 1 or any(layer.media_type != LAYER_MEDIA_TYPE for layer in manifest.layers):
        raise IntegrityError(f"{where}: the manifest does not have exactly one {title!r} layer of type {LAYER_MEDIA_TYPE}")
    return matches[0]


def _record_parts(staging: Path, manifest: ImageManifest, where: str) -> dict[str, Part]:
    """The parts RECORD describes, after checking its paths and that each part has one layer."""
    if not (staging / RECORD_FILE).is_file():
        raise IntegrityError(f"{where}: the bundle layer has no RECORD")
    files = bundle_files(staging)
    for file in files:
        path = PurePosixPath(file.path)
        if path.is_absolute() or ".." in path.parts or "\\" in file.path or not path.parts:
            raise IntegrityError(f"{where}: refusing {file.path!r} listed in RECORD: absolute paths and '..' are not allowed")
    parts = {part.name: part for part in split_parts(files)}
    titles = [layer.title for layer in manifest.layers]
    if sorted(titles) != sorted(parts):
        raise IntegrityError(
            f"{where}: the manifest's layers ({', '.join(titles)}) do not match the parts of its RECORD ({', '.join(parts)})"
        )
    return parts


def _copy_from_local(part: Part, reusable: LocalFiles, staging: Path) -> bool:
    """Copy the part from bundles already in the local store; False if any file is missing there."""
    if not all(reusable.has(file.sha256) for file in part.files):
        return False
    # a file that fails its check is not a problem: downloading the layer overwrites what was copied
    return all(reusable.copy(file.sha256, staging.joinpath(*PurePosixPath(file.path).parts)) for file in part.files)
