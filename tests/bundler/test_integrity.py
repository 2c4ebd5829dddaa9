"""RECORD is checked on serve and import: a changed, added or missing file is refused, by name."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from modelbundle.bundler import LocalStore, export_archive, open_bundle
from modelbundle.errors import IntegrityError

from ._helpers import Built, cli, failed, flip_byte, store_state

MODEL = "artifacts/model/model.joblib"


def test_serve_refuses_a_changed_artifact_byte(iris_copy: Built) -> None:
    flip_byte(iris_copy.path / MODEL)
    error = failed(cli("serve", iris_copy.tag, "--port", "0", home=iris_copy.home, timeout=120))
    assert re.fullmatch(
        rf"error: {re.escape(str(iris_copy.path))}: {MODEL} does not match its RECORD digest \(the file was changed or corrupted\)", error,
    )


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: flip_byte(p / "src/service.py"), r"src/service\.py does not match its RECORD digest"),
        (lambda p: (p / "src/extra.py").write_text("import os\n"), r"src/extra\.py is not listed in RECORD \(the bundle was modified\)"),
        (lambda p: (p / "openapi.json").unlink(), r"openapi\.json is listed in RECORD but missing"),
        (lambda p: (p / MODEL).write_bytes((p / MODEL).read_bytes() + b"\0"), r"artifacts/model/model\.joblib does not match its RECORD digest"),
        (lambda p: (p / "RECORD").unlink(), r"has no RECORD; it is not a complete bundle"),
    ],
    ids=["changed-source", "added-file", "missing-file", "longer-artifact", "no-record"],
)
def test_opening_a_modified_bundle_names_the_file(iris_copy: Built, tamper: object, message: str) -> None:
    assert callable(tamper)
    tamper(iris_copy.path)
    with pytest.raises(IntegrityError, match=message):
        open_bundle(iris_copy.tag)


def _rewrite(archive: Path, output: Path, name: str) -> None:
    """Copy ``archive`` with one byte of member ``name`` changed (its RECORD left as it was)."""
    with tarfile.open(archive) as source, tarfile.open(output, "w:gz") as target:
        for member in source.getmembers():
            handle = source.extractfile(member)
            assert handle is not None
            data = bytearray(handle.read())
            if member.name == name:
                data[100] ^= 0x01
            target.addfile(member, io.BytesIO(bytes(data)))


def test_import_refuses_an_archive_with_a_changed_artifact_byte(iris: Built, tmp_path: Path, home: Path) -> None:
    archive = export_archive(LocalStore(iris.home).get(iris.tag), tmp_path / "iris.tar.gz")
    tampered = tmp_path / "tampered.tar.gz"
    _rewrite(archive, tampered, MODEL)
    before = store_state(home)

    error = failed(cli("import", tampered, home=home))
    assert re.search(rf"{MODEL} does not match its RECORD digest", error)
    assert store_state(home) == before == ([], [])
    assert not (home / "bundles").exists()
