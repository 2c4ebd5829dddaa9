"""STORE URLs -> store objects: ``file:///path``, ``s3://bucket/prefix``, ``oci://host[:port]/namespace``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import StoreError
from ._backend import BlobBackend
from ._base import BaseStore

SCHEMES = ("file", "s3", "oci")
#: the schemes of plain object stores (``BlobBackend``), which also keep large job payloads
BLOB_SCHEMES = ("file", "s3")


def open_store(url: str, *, endpoint_url: str | None = None, insecure: bool = False) -> BaseStore:
    """The store named by ``url``. ``endpoint_url`` is for S3-compatible stores; ``insecure`` allows HTTP registries."""
    parts = urlsplit(url)
    if parts.scheme in BLOB_SCHEMES:
        from ._blobstore import BlobStore

        return BlobStore(url, open_blob_backend(url, endpoint_url=endpoint_url))
    if parts.scheme == "oci":
        if not parts.netloc or not parts.path.strip("/"):
            raise StoreError(f"{url!r}: an OCI store URL is oci://host[:port]/namespace")
        from ._oci import OCIStore

        return OCIStore(url, insecure=insecure)
    raise StoreError(f"{url!r} is not a store URL; use {', '.join(s + '://...' for s in SCHEMES)}")


def open_blob_backend(url: str, *, endpoint_url: str | None = None) -> BlobBackend:
    """The plain object store named by ``file:///path`` or ``s3://bucket[/prefix]``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StoreError(f"{url!r}: a file store URL is file:///absolute/path")
        from ._file import FileBackend

        return FileBackend(Path(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StoreError(f"{url!r}: an S3 store URL is s3://bucket[/prefix]")
        from ._s3 import S3Backend

        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        return S3Backend(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint)
    raise StoreError(f"{url!r} is not a blob store URL; use {', '.join(s + '://...' for s in BLOB_SCHEMES)}")


def split_bundle_url(ref: str) -> tuple[str, str, str | None]:
    """``STORE/NAME[:VERSION]`` -> (store URL, name, version or None for the latest)."""
    store, sep, tag = ref.rstrip("/").rpartition("/")
    name, colon, version = tag.partition(":")
    if not sep or not name or (colon and not version) or not store.partition("://")[2]:
        raise StoreError(f"{ref!r} is not STORE/NAME[:VERSION] (e.g. oci://localhost:5000/models/iris:3f2a)")
    return store, name, version or None
