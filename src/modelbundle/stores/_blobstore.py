"""Content-addressed bundles on a plain object store (a directory, an S3 bucket).

Layout under the store's root::

    blobs/sha256/<hex>                 one object per distinct file content
    bundles/<name>/<version>.json      the bundle's index: its files and manifest; written last

Push uploads only the blobs the store lacks, then the index, so a bundle is
visible only once complete and an interrupted push is finished by running it
again. Pull copies what the local store already has, downloads the rest while
hashing it, verifies RECORD, and commits atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from ..bundler import MANIFEST_FILE, LocalStore, StoredBundle, file_digest, verify_record
from ..errors import BundleNotFound, IntegrityError
from ._backend import BlobBackend
from ._base import BaseStore, RemoteBundle, TransferReport
from ._layout import BundleFile, bundle_files, check_pulled_manifest
from ._local import LocalFiles
from ._progress import Advance, TransferProgress

INDEX_FORMAT = 1


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{digest}"


def index_key(name: str, version: str) -> str:
    return f"bundles/{name}/{version}.json"


class BlobStore(BaseStore):
    """A remote store made of blobs and indexes on a ``BlobBackend``."""

    def __init__(self, url: str, backend: BlobBackend) -> None:
        self.url = url.rstrip("/")
        self.backend = backend

    def push(self, bundle: StoredBundle, progress: TransferProgress) -> TransferReport:
        verify_record(bundle.path)  # never publish a bundle that is already damaged
        files = bundle_files(bundle.path)
        report = TransferReport()
        seen: set[str] = set()
        for file in files:
            if file.sha256 in seen:
                continue
            seen.add(file.sha256)
            key = blob_key(file.sha256)
            if self.backend.exists(key):
                report.skipped_blobs += 1
                report.skipped_bytes += file.size
                continue
            with progress.task(f"uploading {file.path}", file.size) as advance:
                self.backend.upload(key, bundle.path / file.path, advance)
            report.sent_blobs += 1
            report.sent_bytes += file.size
            report.sent.append(file.path)
        index = {
            "format": INDEX_FORMAT,
            "name": bundle.manifest.name,
            "version": bundle.manifest.version,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        }
        self.backend.put_bytes(index_key(bundle.manifest.name, bundle.manifest.version), json.dumps(index, indent=1).encode())
        return report

    def pull(self, name: str, version: str, local: LocalStore, progress: TransferProgress) -> tuple[StoredBundle, TransferReport]:
        files = self._index(name, version)
        reusable = LocalFiles(local)
        report = TransferReport()
        with local.staging() as staging:
            for file in files:
                destination = _safe_destination(staging, file.path, self.url)
                if reusable.copy(file.sha256, destination):
                    report.skipped_blobs += 1
                    report.skipped_bytes += file.size
                    continue
                with progress.task(f"downloading {file.path}", file.size) as advance:
                    self._download_verified(file, destination, staging, advance)
                report.sent_blobs += 1
                report.sent_bytes += file.size
                report.sent.append(file.path)
            verify_record(staging)
            check_pulled_manifest(staging, name, version, self.url)
            bundle, _created = local.commit(staging, name, version)
        return bundle, report

    def list(self) -> list[RemoteBundle]:
        found = []
        for key in self.backend.list_keys("bundles/"):
            parts = PurePosixPath(key).parts
            if len(parts) == 3 and parts[2].endswith(".json"):
                found.append(RemoteBundle(parts[1], parts[2].removesuffix(".json")))
        return sorted(found, key=lambda b: (b.name, b.version))

    def created_at(self, name: str, version: str) -> str:
        digests = [file.sha256 for file in self._index(name, version) if file.path == MANIFEST_FILE]
        raw = self.backend.get_bytes(blob_key(digests[0])) if digests else None
        try:
            return str(json.loads(raw or b"")["created_at"])
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"the {MANIFEST_FILE} of {name}:{version} in {self.url} is missing or damaged") from None

    # weights share the bundles' blobs: one object per digest, whoever refers to it
    def has_weight(self, digest: str) -> bool:
        return self.backend.exists(blob_key(digest))

    def put_weight(self, digest: str, source: Path, advance: Advance) -> None:
        self.backend.upload(blob_key(digest), source, advance)

    def get_weight(self, digest: str, destination: Path, advance: Advance) -> None:
        self.backend.download(blob_key(digest), destination, advance)

    def _index(self, name: str, version: str) -> tuple[BundleFile, ...]:
        raw = self.backend.get_bytes(index_key(name, version))
        if raw is None:
            versions = [b.version for b in self.list() if b.name == name]
            hint = f"; versions there: {', '.join(versions)}" if versions else f"; no bundle named {name!r} there"
            raise BundleNotFound(f"no bundle {name}:{version} in {self.url}{hint}")
        try:
            index = json.loads(raw)
            return tuple(BundleFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in index["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"the index of {name}:{version} in {self.url} is damaged: {exc}") from None

    def _download_verified(self, file: BundleFile, destination: Path, staging: Path, advance: object) -> None:
        partial = staging / ".partial"
        self.backend.download(blob_key(file.sha256), partial, advance)  # type: ignore[arg-type]
        digest = file_digest(partial)
        if digest != file.sha256:
            partial.unlink(missing_ok=True)
            raise IntegrityError(
                f"blob sha256:{file.sha256} ({file.path}) in {self.url} is corrupted: its content hashes to "
                f"sha256:{digest}; nothing was written to the local store"
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, destination)


def _safe_destination(staging: Path, path: str, url: str) -> Path:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or "\\" in path or not relative.parts:
        raise IntegrityError(f"refusing file {path!r} listed in a bundle index in {url}")
    return staging.joinpath(*relative.parts)
