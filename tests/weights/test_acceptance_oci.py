"""Acceptance on the Debian registry: the session's 300 MB random file pushed once as an OCI blob, referenced by two bundles."""

from __future__ import annotations

from pathlib import Path

from modelbundle.stores import RegistryClient
from stores._registry_fixture import Registry, registry_fixture  # noqa: F401  (the registry fixture)

from ._acceptance import last_byte_flipped_digest, walk
from ._proxy import CountingProxy
from .conftest import BigFile

REPOSITORY = "models/weights"


def test_oci_weights_are_fetched_once_resumed_verified_and_served_offline(
    registry: Registry, big_file: BigFile, tmp_path: Path
) -> None:
    digest = f"sha256:{big_file.sha256}"
    client = RegistryClient(registry.host, secure=False, credentials=None)
    try:
        client.upload_blob(REPOSITORY, big_file.path, digest, lambda n: None)
    finally:
        client.close()
    proxy = CountingProxy(registry.port)

    def tamper() -> str:
        """Flip the last byte of the registry's own copy of the blob, as a corrupted store would."""
        tampered, flipped = last_byte_flipped_digest(big_file)
        with open(registry.blob_data(digest), "r+b") as data:
            data.seek(big_file.size - 1)
            data.write(flipped)
        return tampered

    try:
        walk(f"oci://127.0.0.1:{proxy.port}/{REPOSITORY}@{digest}", proxy, {}, big_file, tmp_path, tamper)
    finally:
        proxy.close()
