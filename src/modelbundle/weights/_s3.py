"""``s3://bucket/key``: weights in S3 (or an S3-compatible endpoint), read with ranged GETs.

The client is the S3 store's (``stores.S3Backend``): the same credentials, the
same endpoint rules (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``), the same errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from urllib.parse import unquote, urlsplit

from ..errors import ArtifactError
from ._sources import CHUNK_SIZE, BlobSource


class S3Source(BlobSource):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        parts = urlsplit(uri)
        self.bucket, self.key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not self.bucket or not self.key:
            raise ArtifactError(f"{uri!r}: an S3 reference is s3://bucket/key")
        from ..stores import S3Backend

        self._backend = S3Backend(self.bucket)

    def size(self) -> int:
        return self._backend.size(self.key)

    def read(self, start: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self._backend.read_from(self.key, start, CHUNK_SIZE)

    def list_files(self) -> list[str]:
        return self._backend.list_keys(self.key)
