"""``bundle push/pull --with-weights``: a bundle's referenced weights, moved by digest beside the bundle.

A bundle never holds its referenced weights, so a plain push or pull moves none
of them. With ``--with-weights`` a push also copies each weight blob the store
lacks into it (``blobs/sha256/<hex>`` in a directory or bucket, the repository
``NAMESPACE/weights/sha256`` in a registry), from the local cache (filled from
the weights' URIs first, so that what is sent is verified); a blob the store has
is not sent again, whichever bundle put it there. The bundle is not rewritten:
its references still name their URIs. A pull with ``--with-weights`` fills the
local cache: from the store when it has a blob, else from the blob's URI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..bundler import StoredBundle, file_digest
from ..errors import IntegrityError
from ..weights import (
    WeightBlob,
    WeightRef,
    blob_path,
    cached_path,
    distinct_blobs,
    ensure,
    references,
)
from ._base import BaseStore, TransferReport
from ._progress import TransferProgress


def push_weights(store: BaseStore, bundle: StoredBundle, progress: TransferProgress) -> TransferReport:
    """Copy the blobs ``store`` lacks into it (after the cache has them, verified); the bundle is unchanged."""
    report = TransferReport()
    missing = []
    for blob in distinct_blobs(references(bundle.manifest)):
        if store.has_weight(blob.sha256):
            report.skipped_blobs += 1
            report.skipped_bytes += blob.size
        else:
            missing.append(blob)
    local = _in_cache(missing, progress)
    for blob in missing:
        with progress.task(f"uploading weights {blob.label}", blob.size) as advance:
            store.put_weight(blob.sha256, local[blob.sha256], advance)
        report.sent_blobs += 1
        report.sent_bytes += blob.size
        report.sent.append(blob.label)
    return report


def pull_weights(store: BaseStore, bundle: StoredBundle, progress: TransferProgress) -> TransferReport:
    """Fill the local cache with the bundle's weights: from ``store`` when it has a blob, else from its URI."""
    report = TransferReport()
    from_uri = []
    for blob in distinct_blobs(references(bundle.manifest)):
        if cached_path(blob.sha256) is not None:
            report.skipped_blobs += 1
            report.skipped_bytes += blob.size
        elif store.has_weight(blob.sha256):
            _download_to_cache(store, blob, progress)
            report.sent_blobs += 1
            report.sent_bytes += blob.size
            report.sent.append(blob.label)
        else:
            from_uri.append(blob)
    _in_cache(from_uri, progress)
    report.sent_blobs += len(from_uri)
    report.sent_bytes += sum(blob.size for blob in from_uri)
    report.sent += [f"{blob.label} (from {blob.uri})" for blob in from_uri]
    return report


def _in_cache(blobs: list[WeightBlob], progress: TransferProgress) -> dict[str, Path]:
    """sha256 -> the verified cached file of each blob, fetching from its URI what the cache lacks."""
    refs = [WeightRef(blob.sha256, blob.uri, blob.sha256, blob.size) for blob in blobs]  # named by digest
    return ensure(refs, progress=progress) if refs else {}


def _download_to_cache(store: BaseStore, blob: WeightBlob, progress: TransferProgress) -> None:
    """The store's copy into the cache: written beside its place, hashed, renamed only if it matches."""
    target = blob_path(blob.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    os.close(fd)
    try:
        with progress.task(f"downloading weights {blob.label}", blob.size) as advance:
            store.get_weight(blob.sha256, Path(temp), advance)
        actual = file_digest(Path(temp))
        if actual != blob.sha256:
            raise IntegrityError(
                f"weights {blob.label} in {store.url} are corrupted: expected sha256:{blob.sha256}, the store's blob "
                f"hashes to sha256:{actual}; nothing was written to the cache"
            )
        os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)
