"""Artifact stores: push bundles to, and pull them from, a directory, S3 or an OCI registry."""

from __future__ import annotations

from ._base import BaseStore, RemoteBundle, TransferReport
from ._progress import TransferProgress
from ._url import open_store, split_bundle_url

__all__ = ["BaseStore", "RemoteBundle", "TransferProgress", "TransferReport", "open_store", "split_bundle_url"]
