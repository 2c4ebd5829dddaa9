"""The weights tests' shared setup: one 300 MB random file per session (the acceptance tests' weights)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from stores._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401  (the moto_s3 fixture)

BIG_SIZE = 300 * 1024 * 1024


class BigFile(NamedTuple):
    path: Path
    sha256: str
    size: int


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    path = tmp_path_factory.mktemp("weights") / "big.bin"
    hasher = hashlib.sha256()
    left = BIG_SIZE
    with open(path, "wb") as out:
        while left:  # every byte of BIG_SIZE: 300 MiB is not a whole number of 8 MiB chunks
            chunk = os.urandom(min(left, 8 * 1024 * 1024))
            hasher.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    assert path.stat().st_size == BIG_SIZE
    return BigFile(path, hasher.hexdigest(), BIG_SIZE)
