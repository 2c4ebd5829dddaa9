"""The JobStore contract (tests/runtime/test_job_store.py) run over PostgresJobStore, with large
payloads in a file:// blob backend: the same tests, this module's ``store`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.postgres import PostgresCluster
from modelbundle.runtime.jobs import JobStore
from modelbundle.runtime.jobs._postgres import PostgresJobStore
from modelbundle.stores import open_blob_backend

from ..test_job_store import *  # noqa: F403  (every contract test, collected again here)


@pytest.fixture
def store(postgres: PostgresCluster, tmp_path: Path) -> Iterator[JobStore]:
    opened = PostgresJobStore(postgres.new_database(), blobs=open_blob_backend((tmp_path / "blobs").as_uri()), inline_limit=1024)
    yield opened
    opened.close()
