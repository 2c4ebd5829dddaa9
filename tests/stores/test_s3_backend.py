"""``S3Backend`` against moto's S3 emulator on 127.0.0.1 (a real HTTP server; the real AWS is out of reach here).

moto speaks the S3 API well enough to exercise boto3's transfer manager,
multipart uploads, error bodies and, once switched on, signature checks
against IAM users. What it cannot show: AWS's throughput, its real IAM
policy engine, or regional endpoints.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modelbundle.errors import AuthenticationError, RemoteStoreError
from modelbundle.stores import _s3
from modelbundle.stores._s3 import S3Backend

from ._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401

MiB = 1024 * 1024


def _backend(s3: MotoS3, prefix: str = "", bucket: str | None = None) -> S3Backend:
    return S3Backend(bucket or s3.bucket, prefix, endpoint_url=s3.endpoint_url)


def _counter() -> tuple[list[int], Callable[[int], None]]:
    seen: list[int] = []
    return seen, seen.append


@pytest.mark.parametrize("prefix", ["", "team/models"])
def test_small_objects_round_trip_under_the_prefix(moto_s3: MotoS3, prefix: str) -> None:
    backend = _backend(moto_s3, prefix + "/")  # a trailing slash in the URL changes nothing
    backend.put_bytes("bundles/iris/1.json", b'{"v": 1}')
    backend.put_bytes("bundles/iris/2.json", b'{"v": 2}')
    backend.put_bytes("bundles/iris-large/1.json", b"{}")
    backend.put_bytes("blobs/sha256/abc", b"blob")

    assert backend.get_bytes("bundles/iris/2.json") == b'{"v": 2}'
    assert backend.exists("blobs/sha256/abc")
    assert not backend.exists("blobs/sha256/abd")
    assert backend.get_bytes("blobs/sha256/abd") is None
    # a prefix is a directory: "bundles/iris" does not reach into "bundles/iris-large"
    assert backend.list_keys("bundles/iris") == ["bundles/iris/1.json", "bundles/iris/2.json"]
    assert backend.list_keys("bundles/") == ["bundles/iris-large/1.json", "bundles/iris/1.json", "bundles/iris/2.json"]
    assert backend.list_keys("") == ["blobs/sha256/abc", *backend.list_keys("bundles/")]
    assert backend.list_keys("nothing/here") == []

    root = f"{prefix}/" if prefix else ""
    assert moto_s3.keys() == sorted(root + key for key in backend.list_keys(""))


def test_list_keys_follows_every_page(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_s3, "LIST_PAGE_SIZE", 10)  # S3 pages at 1000; 25 keys make three pages here
    backend = _backend(moto_s3, "p")
    keys = [f"blobs/sha256/{i:04d}" for i in range(25)]
    for key in keys:
        backend.put_bytes(key, b"")
    assert backend.list_keys("blobs") == keys


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S3 (and moto) refuse parts under 5 MiB, so: 12 MiB in parts of 5, 5 and 2 MiB
    monkeypatch.setattr(_s3, "MULTIPART_THRESHOLD", 5 * MiB)
    monkeypatch.setattr(_s3, "MULTIPART_CHUNKSIZE", 5 * MiB)
    backend = _backend(moto_s3, "store")
    data = random.Random(6).randbytes(12 * MiB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)

    sent, advance = _counter()
    backend.upload("blobs/sha256/big", source, advance)
    assert sum(sent) == len(data)
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="store/blobs/sha256/big")
    assert head["ETag"].strip('"').endswith("-3")  # the ETag of a multipart object counts its parts
    assert head["ContentLength"] == len(data)

    received, advance = _counter()
    backend.download("blobs/sha256/big", tmp_path / "back.bin", advance)
    assert sum(received) == len(data)
    assert (tmp_path / "back.bin").read_bytes() == data


def test_a_small_file_is_one_put(moto_s3: MotoS3, tmp_path: Path) -> None:
    backend = _backend(moto_s3)
    (tmp_path / "small").write_bytes(b"x" * 1000)
    sent, advance = _counter()
    backend.upload("blobs/sha256/small", tmp_path / "small", advance)
    assert sum(sent) == 1000
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="blobs/sha256/small")
    assert "-" not in head["ETag"]
    assert backend.get_bytes("blobs/sha256/small") == b"x" * 1000


def test_downloading_a_missing_key_names_it(moto_s3: MotoS3, tmp_path: Path) -> None:
    backend = _backend(moto_s3, "team")
    with pytest.raises(RemoteStoreError, match=r"s3://modelbundle-test/team/blobs/sha256/gone is missing") as raised:
        backend.download("blobs/sha256/gone", tmp_path / "out", lambda n: None)
    assert not isinstance(raised.value, AuthenticationError)


@pytest.mark.parametrize(
    "operation",
    [
        lambda b, tmp: b.put_bytes("k", b"x"),
        lambda b, tmp: b.get_bytes("k"),
        lambda b, tmp: b.list_keys(""),
        lambda b, tmp: b.download("k", tmp / "out", lambda n: None),
        lambda b, tmp: b.upload("k", tmp / "src", lambda n: None),
    ],
    ids=["put_bytes", "get_bytes", "list_keys", "download", "upload"],
)
def test_a_missing_bucket_says_so(moto_s3: MotoS3, tmp_path: Path, operation: Callable[[S3Backend, Path], object]) -> None:
    (tmp_path / "src").write_bytes(b"data")
    backend = _backend(moto_s3, bucket="no-such-bucket")
    with pytest.raises(RemoteStoreError, match=r"the bucket 'no-such-bucket' does not exist at http://127\.0\.0\.1:\d+"):
        operation(backend, tmp_path)


def test_exists_is_false_in_a_missing_bucket(moto_s3: MotoS3) -> None:
    # a HEAD cannot tell a missing bucket from a missing key; the upload that follows will
    assert not _backend(moto_s3, bucket="no-such-bucket").exists("k")


def test_credentials_are_checked_once_moto_authenticates(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, stranger = moto_s3.require_credentials()
    (tmp_path / "src").write_bytes(b"data")

    # the environment still holds the "testing" key, which moto's IAM does not know
    unknown = _backend(moto_s3, "team")
    for operation in (
        lambda: unknown.put_bytes("k", b"x"),
        lambda: unknown.get_bytes("k"),
        lambda: unknown.list_keys(""),
        lambda: unknown.upload("k", tmp_path / "src", lambda n: None),
    ):
        with pytest.raises(AuthenticationError, match=r"^S3 rejected the credentials for s3://modelbundle-test/team \(InvalidAccessKeyId\); check AWS_ACCESS_KEY_ID"):
            operation()
    with pytest.raises(AuthenticationError, match=r"\(403\)"):  # HEAD: a status, no error body
        unknown.exists("k")

    secret = allowed.secret_access_key
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", allowed.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(AuthenticationError, match=r"\(SignatureDoesNotMatch\); the secret key does not match"):
        _backend(moto_s3).put_bytes("k", b"x")

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    accepted = _backend(moto_s3, "team")
    accepted.put_bytes("k", b"x")
    assert accepted.get_bytes("k") == b"x"
    assert accepted.list_keys("") == ["k"]

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", stranger.access_key_id)  # valid keys, no policy
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", stranger.secret_access_key)
    with pytest.raises(AuthenticationError, match=r"\(AccessDenied\); the credentials are valid but not allowed"):
        _backend(moto_s3, "team").get_bytes("k")


def test_no_credentials_at_all_is_an_authentication_error(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # do not wait for an instance-metadata service
    with pytest.raises(AuthenticationError, match="no AWS credentials found for s3://modelbundle-test"):
        _backend(moto_s3).get_bytes("k")


@pytest.mark.parametrize(
    "operation",
    [
        lambda b, tmp: b.exists("k"),
        lambda b, tmp: b.put_bytes("k", b"x"),
        lambda b, tmp: b.get_bytes("k"),
        lambda b, tmp: b.list_keys(""),
        lambda b, tmp: b.download("k", tmp / "out", lambda n: None),
        lambda b, tmp: b.upload("k", tmp / "src", lambda n: None),
    ],
    ids=["exists", "put_bytes", "get_bytes", "list_keys", "download", "upload"],
)
def test_a_dead_endpoint_is_a_remote_store_error(
    moto_s3: MotoS3, tmp_path: Path, operation: Callable[[S3Backend, Path], object]
) -> None:
    (tmp_path / "src").write_bytes(b"data")
    backend = _backend(moto_s3)
    moto_s3.kill()
    with pytest.raises(RemoteStoreError, match=rf"^cannot reach the S3 endpoint {moto_s3.endpoint_url}: ") as raised:
        operation(backend, tmp_path)
    assert not isinstance(raised.value, AuthenticationError)


def test_a_server_killed_mid_upload_fails_the_upload_and_leaves_no_object(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_s3, "MULTIPART_THRESHOLD", 5 * MiB)
    monkeypatch.setattr(_s3, "MULTIPART_CHUNKSIZE", 5 * MiB)
    backend = _backend(moto_s3)
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(7).randbytes(12 * MiB))
    sent: list[int] = []

    def advance(n: int) -> None:
        sent.append(n)
        if sum(sent) >= MiB:
            moto_s3.kill()

    with pytest.raises(RemoteStoreError, match="cannot reach the S3 endpoint"):
        backend.upload("blobs/sha256/big", source, advance)
    assert sum(sent) < 12 * MiB

    moto_s3.restart()  # moto forgets everything; the bucket is back, empty
    assert not backend.exists("blobs/sha256/big")
    backend.upload("blobs/sha256/big", source, lambda n: None)
    assert backend.exists("blobs/sha256/big")


def test_a_server_killed_mid_download_fails_the_download(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_s3, "MULTIPART_THRESHOLD", 5 * MiB)
    monkeypatch.setattr(_s3, "MULTIPART_CHUNKSIZE", 5 * MiB)
    # one part at a time: parts fetched at once could all sit in socket buffers before the kill,
    # and the download would then finish from them; a later part needs the dead server
    monkeypatch.setattr(_s3, "MAX_CONCURRENCY", 1)
    backend = _backend(moto_s3)
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(8).randbytes(12 * MiB))
    backend.upload("blobs/sha256/big", source, lambda n: None)
    received: list[int] = []

    def advance(n: int) -> None:
        received.append(n)
        if sum(received) >= MiB:
            moto_s3.kill()

    with pytest.raises(RemoteStoreError, match="cannot reach the S3 endpoint"):
        backend.download("blobs/sha256/big", tmp_path / "back.bin", advance)


def test_the_endpoint_can_come_from_aws_endpoint_url(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore reads AWS_ENDPOINT_URL itself (since botocore 1.31.57 / boto3 1.28.57)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint_url)
    backend = S3Backend(moto_s3.bucket, "env")
    assert backend.endpoint_url == moto_s3.endpoint_url
    backend.put_bytes("k", b"via env")
    assert moto_s3.keys() == ["env/k"]


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes ``import boto3`` raise ImportError
    with pytest.raises(RemoteStoreError, match=r"s3:// stores need boto3: pip install 'modelbundle\[aws\]'"):
        S3Backend("bucket")


def test_a_malformed_endpoint_url_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(RemoteStoreError, match=r"'localhost:9000' is not a usable S3 endpoint URL"):
        S3Backend("bucket", endpoint_url="localhost:9000")  # no scheme


def test_delete_removes_one_object_and_a_missing_one_is_no_error(moto_s3: MotoS3) -> None:
    backend = _backend(moto_s3, "jobs-blobs")
    backend.put_bytes("jobs/a/result", b"1")
    backend.put_bytes("jobs/a/body", b"2")
    backend.delete("jobs/a/result")
    backend.delete("jobs/a/result")  # again: already gone
    assert moto_s3.keys() == ["jobs-blobs/jobs/a/body"]
