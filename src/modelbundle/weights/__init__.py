"""Weights by reference: artifacts a bundle names by URI and digest instead of copying.

``references(manifest)`` lists them; ``ensure(refs)`` puts each in the one
content-addressed cache (``$MODELBUNDLE_HOME/blobs/sha256/<hex>``), fetched
where missing (in parallel, resumed, verified before use) and gives their
paths; ``cached_path(digest)`` looks without fetching; ``open_source(uri)``
reads a ``file://``, ``s3://`` or ``oci://`` object (size, ranged reads), to
copy a blob elsewhere.
"""

from __future__ import annotations

from ._cache import blob_path, cache_root, cached_path
from ._digest import describe, stream_digest
from ._fetch import OFFLINE_ENV, Progress, ensure, offline_from_env
from ._lock import LOCK_FILE, read_weights_lock, write_weights_lock
from ._ref import (
    SCHEMES,
    WeightBlob,
    WeightFile,
    WeightRef,
    check_hex,
    dir_digest,
    distinct_blobs,
    references,
)
from ._shipped import SHIPPED_DIR, shipped_path, shipped_paths
from ._sources import BlobSource, open_source

__all__ = [
    "LOCK_FILE",
    "OFFLINE_ENV",
    "SCHEMES",
    "SHIPPED_DIR",
    "BlobSource",
    "Progress",
    "WeightBlob",
    "WeightFile",
    "WeightRef",
    "blob_path",
    "cache_root",
    "cached_path",
    "check_hex",
    "describe",
    "dir_digest",
    "distinct_blobs",
    "ensure",
    "offline_from_env",
    "open_source",
    "read_weights_lock",
    "references",
    "shipped_path",
    "shipped_paths",
    "stream_digest",
    "write_weights_lock",
]
