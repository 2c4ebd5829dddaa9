"""Acceptance on moto's S3 server: the session's 300 MB random file, uploaded once, referenced by two bundles."""

from __future__ import annotations

from pathlib import Path

from stores._moto_fixture import MotoS3

from ._acceptance import last_byte_flipped_digest, walk
from ._proxy import CountingProxy
from .conftest import BigFile

KEY = "models/big.bin"


def test_s3_weights_are_fetched_once_resumed_verified_and_served_offline(
    moto_s3: MotoS3, big_file: BigFile, tmp_path: Path
) -> None:
    client = moto_s3.client()
    client.upload_file(str(big_file.path), moto_s3.bucket, KEY)
    proxy = CountingProxy(int(moto_s3.endpoint_url.rsplit(":", 1)[1]))

    def tamper() -> str:
        """The object again with its last byte flipped: all but that byte copied on the server, not sent again."""
        digest, flipped = last_byte_flipped_digest(big_file)
        upload = client.create_multipart_upload(Bucket=moto_s3.bucket, Key=KEY)["UploadId"]
        head = client.upload_part_copy(
            Bucket=moto_s3.bucket, Key=KEY, UploadId=upload, PartNumber=1,
            CopySource={"Bucket": moto_s3.bucket, "Key": KEY}, CopySourceRange=f"bytes=0-{big_file.size - 2}",
        )
        tail = client.upload_part(Bucket=moto_s3.bucket, Key=KEY, UploadId=upload, PartNumber=2, Body=flipped)
        parts = [{"PartNumber": 1, "ETag": head["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": tail["ETag"]}]
        client.complete_multipart_upload(Bucket=moto_s3.bucket, Key=KEY, UploadId=upload, MultipartUpload={"Parts": parts})
        assert client.head_object(Bucket=moto_s3.bucket, Key=KEY)["ContentLength"] == big_file.size
        return digest

    try:
        walk(f"s3://{moto_s3.bucket}/{KEY}", proxy, {"AWS_ENDPOINT_URL": proxy.endpoint_url}, big_file, tmp_path, tamper)
    finally:
        proxy.close()
