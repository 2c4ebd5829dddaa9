"""``bundle serve --jobs-url postgresql://... --jobs-blobs file:///...``: large job payloads go to the blob store."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from fixtures.postgres import PostgresCluster
from fixtures.servers import ProcessServer

Serve = Callable[..., AbstractContextManager[ProcessServer]]
#: rows enough (with long decimals) for a body and a result above the 64 KiB kept in the database
ROWS = [[tag / 7, tag / 13] for tag in range(2000)]


def test_a_large_job_body_and_result_live_in_the_blob_store_and_read_back_whole(
    serve_in_subprocess: Serve, postgres: PostgresCluster, tmp_path: Path
) -> None:
    blobs = tmp_path / "blobs"
    database = postgres.new_database()
    with serve_in_subprocess("echo.py:Echo", "--jobs-url", database, "--jobs-blobs", blobs.as_uri()) as server:
        expected = server.post("/predict", json={"x": ROWS})
        assert expected.status_code == 200, expected.text
        submitted = server.post("/predict/jobs", json={"x": ROWS})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while (status := server.get(f"/predict/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status["status"] == "succeeded", status
        result = server.get(f"/predict/jobs/{job_id}/result")
        assert result.status_code == 200 and result.json() == expected.json()
    stored = [path for path in blobs.rglob("*") if path.is_file()]
    assert stored and any(job_id in str(path) for path in stored), stored
    assert len(stored) >= 2 and all(path.stat().st_size > 64 * 1024 for path in stored), stored


def test_jobs_blobs_without_jobs_url_is_one_line(serve_in_subprocess: Serve, tmp_path: Path) -> None:
    with serve_in_subprocess("echo.py:Echo", "--jobs-blobs", tmp_path.as_uri(), ready=False) as server:
        assert server.wait() != 0
    assert "--jobs-blobs goes with --jobs-url" in server.stderr
    assert "Traceback" not in server.stderr
