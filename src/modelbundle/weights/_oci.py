"""``oci://registry/repository@sha256:<hex>``: a blob in an OCI registry, read with GETs that carry Range.

The client is the OCI store's (``stores.RegistryClient``): Docker config or
``$MODELBUNDLE_REGISTRY_USERNAME``/``PASSWORD`` credentials, token auth, plain
HTTP only for loopback registries. It earns the authorization; the GET itself
is our own reader's (``_ranged_get``), which costs a fraction of httpx's CPU per GB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from ..errors import ArtifactError
from ._ranged_get import StatusError, open_ranged_get
from ._sources import BlobSource, Body


class OCISource(BlobSource):
    splits = True

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        parts = urlsplit(uri)
        repository, _, self.digest = parts.path.strip("/").partition("@")
        if not parts.netloc or not parts.hostname or not repository or not self.digest.startswith("sha256:"):
            raise ArtifactError(f"{uri!r}: an OCI reference is oci://registry/repository@sha256:<hex>")
        from ..stores import RegistryClient, find_credentials, is_loopback

        self.repository = repository
        self._lock = threading.Lock()  # parts of one blob are read from several threads
        self._earned: tuple[str, dict[str, str]] | None = None
        self._client = RegistryClient(
            parts.netloc, secure=not is_loopback(parts.hostname), credentials=find_credentials(parts.netloc)
        )

    def size(self) -> int:
        return self._client.blob_size(self.repository, self.digest)

    def _request(self, *, renew: bool = False) -> tuple[str, dict[str, str]]:
        """(URL, headers) of the blob's GET: the client answers the registry's challenge once (a HEAD), and again
        when the registry stops taking what it earned (a token that expired during a long fetch)."""
        with self._lock:
            if self._earned is None or renew:
                self._earned = self._client.blob_request(self.repository, self.digest)
            return self._earned

    @contextmanager
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Body]:
        try:
            url, headers = self._request()
            try:
                body = open_ranged_get(url, start, stop, headers)
            except StatusError as exc:
                if exc.status != 401:
                    raise
                url, headers = self._request(renew=True)
                body = open_ranged_get(url, start, stop, headers)
        except StatusError as exc:
            raise self._client.refusal(exc.status, exc.reason, f"downloading blob {self.digest} from {self.repository}") from None
        try:
            yield body
        finally:
            body.close()

    def list_files(self) -> list[str]:
        raise ArtifactError(f"{self.uri}: an OCI blob is one file, not a directory")

    def close(self) -> None:
        self._client.close()
