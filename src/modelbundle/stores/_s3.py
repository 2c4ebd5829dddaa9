"""``s3://bucket/prefix``: an S3 bucket (AWS, or an S3-compatible endpoint) as a BlobBackend.

boto3 is the optional extra ``modelbundle[aws]``, imported when a backend is
made, so ``import modelbundle`` never loads it. Every boto3/botocore error is
translated to our tree in one place, ``_translate_errors``.

No temporary key is needed for atomic writes: S3 makes an object visible only
once it is complete. A single PUT is all or nothing, and a multipart upload is
invisible until CompleteMultipartUpload, so a reader never sees half a blob.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, RemoteStoreError
from ._backend import BlobBackend
from ._progress import Advance

#: files above this size go up in parts (S3 needs parts of at least 5 MiB, except the last)
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
#: parts in flight at once for one file
MAX_CONCURRENCY = 4
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: attempts per request, the first included ("standard" retry mode): a dead endpoint fails in seconds
MAX_ATTEMPTS = 2
#: how long a presigned GET stays valid: one ranged read of a weights blob uses it
PRESIGNED_SECONDS = 3600
#: keys per ListObjectsV2 response (S3's own maximum)
LIST_PAGE_SIZE = 1000

#: S3 error codes that mean "these credentials are not accepted", with what to do;
#: a HEAD response has no body, so only its status (403)
_CHECK_KEYS = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
_AUTH_HINTS: dict[str, str] = {
    "AccessDenied": "the credentials are valid but not allowed to use this bucket and prefix",
    "403": "the credentials are wrong, or not allowed to use this bucket and prefix",
    "InvalidAccessKeyId": _CHECK_KEYS,
    "SignatureDoesNotMatch": f"the secret key does not match the access key: {_CHECK_KEYS}",
    "ExpiredToken": "the session token has expired: renew it (AWS_SESSION_TOKEN)",
    "InvalidToken": "the session token is not valid (AWS_SESSION_TOKEN)",
}
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404"})
_INSTALL_HINT = "s3:// stores need boto3: pip install 'modelbundle[aws]'"


class S3Backend(BlobBackend):
    """Objects are S3 keys under ``prefix`` in ``bucket``.

    ``endpoint_url`` points at an S3-compatible service (MinIO, Ceph, moto); without
    it, botocore uses AWS, or ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` if set.
    Credentials and region come from the usual AWS environment variables and files.
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise RemoteStoreError(_INSTALL_HINT) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        custom_endpoint = bool(
            endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            # SigV4 for presigned URLs too (botocore may presign with SigV2, which newer regions refuse)
            signature_version="s3v4",
            # S3-compatible servers are usually reached by IP or a plain host name, where
            # bucket.host (virtual-hosted style) does not resolve; AWS itself prefers it.
            s3={"addressing_style": "path"} if custom_endpoint else None,
        )
        with self._translate_errors(""):
            try:
                # A session of our own: boto3's default session is not safe to share between threads.
                self._client: Any = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
            except ValueError as exc:  # botocore's word for a malformed endpoint URL
                raise RemoteStoreError(f"{endpoint_url!r} is not a usable S3 endpoint URL: {exc}") from exc
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=MAX_CONCURRENCY,
            num_download_attempts=MAX_ATTEMPTS,
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint_url(self) -> str:
        """The endpoint botocore resolved (the explicit one, the environment's, or AWS's)."""
        return str(self._client.meta.endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._translate_errors(key):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    return False
                raise
        return True

    def upload(self, key: str, source: Path, advance: Advance) -> None:
        # If the upload fails, the transfer manager aborts the multipart upload; parts
        # left behind when even that fails are invisible (a bucket lifecycle rule reaps them).
        with self._translate_errors(key):
            self._client.upload_file(
                str(source), self.bucket, self._key(key), Callback=advance, Config=self._transfer
            )

    def download(self, key: str, destination: Path, advance: Advance) -> None:
        from botocore.exceptions import ClientError

        with self._translate_errors(key):
            try:
                self._client.download_file(
                    self.bucket, self._key(key), str(destination), Callback=advance, Config=self._transfer
                )
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND_CODES:
                    raise
                # download_file starts with a HEAD, whose 404 has no body to tell a
                # missing key from a missing bucket: ask the bucket.
                if not self._bucket_exists():
                    raise self._no_such_bucket() from exc
                raise RemoteStoreError(
                    f"s3://{self.bucket}/{self._key(key)} is missing from the store (an incomplete or damaged store)"
                ) from exc

    def size(self, key: str) -> int:
        """The object's size (one HEAD)."""
        with self._translate_errors(key):
            return int(self._client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])

    @contextmanager
    def read_from(self, key: str, start: int = 0, chunk_size: int = 1024 * 1024) -> Iterator[Iterator[bytes]]:
        """The object's bytes from ``start`` on (one ranged GET), streamed in chunks of ``chunk_size``."""
        with self._translate_errors(key):
            ranged = {"Range": f"bytes={start}-"} if start else {}
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key), **ranged)["Body"]

        def chunks() -> Iterator[bytes]:
            with self._translate_errors(key):
                yield from body.iter_chunks(chunk_size)

        try:
            yield chunks()
        finally:
            body.close()

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._translate_errors(key):
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._translate_errors(key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    return None
                raise
            return bytes(response["Body"].read())

    def delete(self, key: str) -> None:
        with self._translate_errors(key):  # S3 answers 204 for a key that is not there
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_keys(self, prefix: str) -> list[str]:
        # ``prefix`` names a directory, as in FileBackend: "bundles/a" must not list "bundles/ab/...".
        under = "/".join(part for part in (self.prefix, prefix.strip("/")) if part)
        search = f"{under}/" if under else ""
        keys: list[str] = []
        with self._translate_errors(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=search, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in keys)

    def presigned_get(self, key: str, expires: int = PRESIGNED_SECONDS) -> str:
        """A URL that GETs the object (Range allowed) without credentials, for readers other than botocore."""
        with self._translate_errors(key):
            return str(self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires
            ))

    def refusal(self, key: str, code: str, message: str) -> RemoteStoreError:
        """The error for S3's answer ``code`` (``AccessDenied``, ``NoSuchKey``, or a bare status) about ``key``."""
        if code in _AUTH_HINTS:
            return AuthenticationError(f"S3 rejected the credentials for {self.url} ({code}); {_AUTH_HINTS[code]}")
        if code == "NoSuchBucket":
            return self._no_such_bucket()
        where = f"s3://{self.bucket}/{self._key(key)}" if key else self.url
        return RemoteStoreError(f"S3 refused the request for {where} ({code}: {message or 'no message'})")

    def _bucket_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket"):
                return False
            raise
        return True

    def _no_such_bucket(self) -> RemoteStoreError:
        return RemoteStoreError(
            f"the bucket {self.bucket!r} does not exist at {self.endpoint_url}; create it, or check the store URL"
        )

    @contextmanager
    def _translate_errors(self, key: str) -> Iterator[None]:
        """The one boundary where boto3/botocore errors become ours, the original chained."""
        from boto3.exceptions import RetriesExceededError, S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError, RetriesExceededError) as raised:
            exc = _unwrap(raised)
            where = f"s3://{self.bucket}/{self._key(key)}" if key else self.url
            if isinstance(exc, ClientError):
                raise self.refusal(key, _code(exc), exc.response.get("Error", {}).get("Message") or "") from raised
            # s3transfer retries a broken download itself and may give up with a bare OSError
            if isinstance(exc, (BotoConnectionError, HTTPClientError, OSError)):
                raise RemoteStoreError(f"cannot reach the S3 endpoint {self.endpoint_url}: {_reason(exc)}") from raised
            if isinstance(exc, NoCredentialsError):
                raise AuthenticationError(
                    f"no AWS credentials found for {self.url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or AWS_PROFILE"
                ) from raised
            raise RemoteStoreError(f"S3 request for {where} failed: {exc}") from raised


def _unwrap(exc: BaseException) -> BaseException:
    """The botocore error inside boto3's transfer wrappers, which flatten it to a message."""
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError

    if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
        return _unwrap(exc.last_exception)
    # boto3 raises S3UploadFailedError inside ``except ClientError`` without ``from``.
    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        return _unwrap(exc.__context__)
    return exc


def _reason(exc: Any) -> str:
    """Why a connection failed, in a few words ("Connection refused") when the OS said so."""
    error = getattr(exc, "kwargs", {}).get("error")
    cause = exc if isinstance(exc, OSError) else getattr(error, "__cause__", None) or getattr(error, "__context__", None)
    if isinstance(cause, OSError) and cause.strerror:
        return str(cause.strerror)
    return str(exc)


def _code(exc: Any) -> str:
    """The S3 error code of a ClientError ("NoSuchKey"; just the status, like "404", for HEAD)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
