"""``open_blob_backend``: the plain object stores (file://, s3://) that also keep large job payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbundle.errors import StoreError
from modelbundle.stores import open_blob_backend


def test_a_file_backend_writes_reads_and_deletes(tmp_path: Path) -> None:
    backend = open_blob_backend((tmp_path / "blobs").as_uri())
    backend.put_bytes("jobs/a/result", b"payload")
    assert (tmp_path / "blobs" / "jobs" / "a" / "result").read_bytes() == b"payload"
    assert backend.get_bytes("jobs/a/result") == b"payload"
    backend.delete("jobs/a/result")
    backend.delete("jobs/a/result")  # again: already gone
    assert backend.get_bytes("jobs/a/result") is None and backend.list_keys("jobs") == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://host/srv/blobs", r"a file store URL is file:///absolute/path"),
        ("s3://", r"an S3 store URL is s3://bucket\[/prefix\]"),
        ("oci://registry/models", r"not a blob store URL; use file://\.\.\., s3://\.\.\."),
        ("/srv/blobs", r"not a blob store URL"),
    ],
)
def test_what_is_not_a_blob_store_is_refused_in_one_line(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_blob_backend(url)
    assert "\n" not in str(info.value)
