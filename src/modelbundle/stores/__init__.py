"""Artifact stores: push bundles to, and pull them from, a directory, S3 or an OCI registry."""

from __future__ import annotations

from ._backend import BlobBackend
from ._base import BaseStore, RemoteBundle, TransferReport
from ._oci import is_loopback
from ._progress import TransferProgress
from ._registry import RegistryClient
from ._registry_auth import find_credentials
from ._s3 import S3Backend
from ._url import open_blob_backend, open_store, split_bundle_url
from ._weights import pull_weights, push_weights

__all__ = [
    "BaseStore",
    "BlobBackend",
    "RegistryClient",
    "RemoteBundle",
    "S3Backend",
    "TransferProgress",
    "TransferReport",
    "find_credentials",
    "is_loopback",
    "open_blob_backend",
    "open_store",
    "pull_weights",
    "push_weights",
    "split_bundle_url",
]
