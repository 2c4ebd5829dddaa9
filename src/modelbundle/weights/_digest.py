"""Describe a URI as a reference: its digest and size, computed by streaming it (``--fetch-digest``, ``bundle weights pin``)."""

from __future__ import annotations

import hashlib

from ..errors import ArtifactError
from ._ref import WeightFile, WeightRef, dir_digest
from ._sources import BlobSource, chunks_of, open_source


def stream_digest(source: BlobSource) -> tuple[str, int]:
    """(sha256 hex, size) of the object, read in chunks: never held in memory."""
    hasher = hashlib.sha256()
    size = 0
    with source.read(0) as body:
        for chunk in chunks_of(body):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _file_digest(uri: str) -> tuple[str, int]:
    source = open_source(uri)
    try:
        return stream_digest(source)
    finally:
        source.close()


def describe(artifact: str, uri: str, kind: str) -> WeightRef:
    """The reference to ``uri`` with digests computed from its content ("dir": every file under it)."""
    source = open_source(uri)
    try:
        if kind == "file":
            digest, size = stream_digest(source)
            return WeightRef(artifact, uri, digest, size, "file")
        files = []
        for path in source.list_files():
            digest, size = _file_digest(f"{uri.rstrip('/')}/{path}")
            files.append(WeightFile(path, digest, size))
        if not files:
            raise ArtifactError(f"artifact '{artifact}': {uri} holds no files")
        return WeightRef(artifact, uri, dir_digest(files), sum(f.size for f in files), "dir", tuple(files))
    finally:
        source.close()
