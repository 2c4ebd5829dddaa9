"""``s3://bucket/key``: weights in S3 (or an S3-compatible endpoint), read with ranged GETs.

The client is the S3 store's (``stores.S3Backend``): the same credentials, the
same endpoint rules (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``), the same errors.
botocore signs a GET (a presigned URL, so ``Range`` stays free) and our own
reader fetches it (``_ranged_get``): botocore's body costs a CPU-second per GB.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

from ..errors import ArtifactError
from ._ranged_get import StatusError, open_ranged_get
from ._sources import BlobSource, Body

_XML_FIELD = r"<{0}>([^<]*)</{0}>"


class S3Source(BlobSource):
    splits = True

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

    @contextmanager
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Body]:
        url = self._backend.presigned_get(self.key)
        try:
            body = open_ranged_get(url, start, stop, cafile=os.environ.get("AWS_CA_BUNDLE"))
        except StatusError as exc:
            raise self._refusal(exc) from None
        try:
            yield body
        finally:
            body.close()

    def list_files(self) -> list[str]:
        return self._backend.list_keys(self.key)

    def _refusal(self, exc: StatusError) -> Exception:
        """S3's XML error (``<Code>AccessDenied</Code>``) in the store's words; a bare status when it sent none."""
        text = exc.body.decode("utf-8", "replace")
        code = re.search(_XML_FIELD.format("Code"), text)
        message = re.search(_XML_FIELD.format("Message"), text)
        return self._backend.refusal(
            self.key, code.group(1) if code else str(exc.status), message.group(1) if message else exc.reason
        )
