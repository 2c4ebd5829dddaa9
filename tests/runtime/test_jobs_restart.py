"""Jobs survive their server: SIGKILL and restart (at least once), attempts, SIGTERM drains."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelbundle.runtime.jobs import JobStatus, SQLiteJobStore

IRIS_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris"
JOBS = 200
POLL_LIMIT_S = 120.0


HOLD = """

def _hold_while_the_file_exists() -> None:
    # added by the test: a job in flight stays in flight until the test removes the file
    import os
    import time

    while os.path.exists(os.environ.get("IRIS_HOLD", "/nonexistent")):
        time.sleep(0.01)
"""


@pytest.fixture(scope="module")
def iris_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The iris example, trained, with predict held while the file $IRIS_HOLD exists."""
    project = tmp_path_factory.mktemp("iris")
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_EXAMPLE / name, project / name)
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
    source = (project / "service.py").read_text()
    call = "        return self.model.predict(x)"
    assert call in source
    (project / "service.py").write_text(source.replace(call, "        _hold_while_the_file_exists()\n" + call) + HOLD)
    return project


def iris_bodies() -> list[dict[str, Any]]:
    from sklearn.datasets import load_iris

    rows = load_iris().data.tolist()
    # 200 different bodies: the 150 rows, then 50 of them shifted a little
    return [{"x": [[v + 0.1 * (i // len(rows)) for v in rows[i % len(rows)]]]} for i in range(JOBS)]


def submit_all(url: str, path: str, bodies: list[dict[str, Any]]) -> list[str]:
    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
            responses = await asyncio.gather(*(client.post(path, json=body) for body in bodies))
        assert all(r.status_code == 202 for r in responses), [r.text for r in responses if r.status_code != 202][:3]
        return [r.json()["id"] for r in responses]

    return asyncio.run(run())


def all_jobs(server: Any, api: str) -> list[dict[str, Any]]:
    return server.get(f"/{api}/jobs?limit=1000").json()["jobs"]  # type: ignore[no-any-return]


def wait_until_all_finished(server: Any, api: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        jobs = all_jobs(server, api)
        if len(jobs) >= count and all(job["status"] in ("succeeded", "failed", "cancelled") for job in jobs):
            return jobs
        assert time.monotonic() < deadline, f"jobs still unfinished: {[j['status'] for j in jobs]}"
        time.sleep(0.1)


def test_200_iris_jobs_survive_a_sigkill(iris_project: Path, tmp_path: Path, serve_in_subprocess: Any) -> None:
    target = f"{iris_project / 'service.py'}:IrisClassifier"
    jobs_dir = str(tmp_path / "jobs")
    hold = tmp_path / "hold"
    hold.touch()  # the first jobs claimed stay running until the kill; the others wait in the queue
    bodies = iris_bodies()
    slots = 4
    with serve_in_subprocess(target, "--jobs-dir", jobs_dir, "--job-concurrency", str(slots), env={"IRIS_HOLD": str(hold)}) as first:
        ids = submit_all(first.url, "/predict/jobs", bodies)
        deadline = time.monotonic() + POLL_LIMIT_S
        # every slot holds a job (one in the held batch, the others waiting at the batcher): no more start
        while len(running := first.get("/predict/jobs?status=running").json()["jobs"]) < slots:
            assert time.monotonic() < deadline, f"only {len(running)} jobs started"
            time.sleep(0.01)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    hold.unlink()

    with serve_in_subprocess(target, "--jobs-dir", jobs_dir, env={"IRIS_HOLD": str(hold)}) as second:
        jobs = wait_until_all_finished(second, "predict", JOBS)
        by_id = {job["id"]: job for job in jobs}
        assert len(jobs) == JOBS and set(by_id) == set(ids)  # none lost, none created twice
        assert {job["status"] for job in jobs} == {"succeeded"}
        # the jobs that were running at the kill ran again; every other one ran once
        rerun = {job["id"] for job in running}
        assert {job_id for job_id, job in by_id.items() if job["attempts"] == 2} == rerun
        assert all(job["attempts"] == 1 for job_id, job in by_id.items() if job_id not in rerun)
        with second.client() as client:
            for job_id, body in zip(ids, bodies, strict=True):
                result = client.get(f"/predict/jobs/{job_id}/result")
                assert result.status_code == 200
                assert result.json() == client.post("/predict", json=body).json()


def test_a_job_that_kills_its_server_fails_after_max_attempts(tmp_path: Path, serve_in_subprocess: Any) -> None:
    args = ("--jobs-dir", str(tmp_path / "jobs"), "--job-max-attempts", "2")
    with serve_in_subprocess("jobs_crash.py:Crash", *args) as server:
        job_id = server.post("/die/jobs", json={"n": 1}).json()["id"]
        assert server.wait() == -signal.SIGKILL  # the job ran (attempt 1) and took the server down
    with serve_in_subprocess("jobs_crash.py:Crash", *args, ready=False) as server:
        assert server.wait() == -signal.SIGKILL  # re-queued at start, ran again (attempt 2), same end
    with serve_in_subprocess("jobs_crash.py:Crash", *args) as server:
        document = server.get(f"/die/jobs/{job_id}").json()
        assert document["status"] == "failed" and document["attempts"] == 2
        assert "its server stopped while it ran, 2 times" in document["error"]
        assert server.get(f"/die/jobs/{job_id}/result").status_code == 409
        assert server.stop() == 0


def test_sigterm_lets_running_jobs_finish_and_leaves_queued_ones_queued(tmp_path: Path, serve_in_subprocess: Any) -> None:
    jobs_dir = tmp_path / "jobs"
    args = ("--jobs-dir", str(jobs_dir), "--job-concurrency", "1", "--graceful-timeout", "30")
    with serve_in_subprocess("slow.py:Slow", *args) as server:
        running = server.post("/asleep/jobs", json={"seconds": 1.0}).json()["id"]
        queued = server.post("/asleep/jobs", json={"seconds": 1.0}).json()["id"]
        deadline = time.monotonic() + POLL_LIMIT_S
        while server.get(f"/asleep/jobs/{running}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert server.stop(signal.SIGTERM) == 0
    store = SQLiteJobStore(jobs_dir)
    try:
        done, waiting = store.get(running), store.get(queued)
        assert done is not None and done.status is JobStatus.SUCCEEDED and done.attempts == 1
        assert waiting is not None and waiting.status is JobStatus.QUEUED and waiting.attempts == 0
    finally:
        store.close()


def test_sigterm_requeues_a_job_past_the_graceful_timeout(tmp_path: Path, serve_in_subprocess: Any) -> None:
    jobs_dir = tmp_path / "jobs"
    with serve_in_subprocess("slow.py:Slow", "--jobs-dir", str(jobs_dir), "--graceful-timeout", "0.5") as server:
        job_id = server.post("/asleep/jobs", json={"seconds": 600}).json()["id"]
        deadline = time.monotonic() + POLL_LIMIT_S
        while server.get(f"/asleep/jobs/{job_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert server.stop(signal.SIGTERM) == 0
        assert "did not finish within the graceful timeout; re-queued" in server.stderr
    store = SQLiteJobStore(jobs_dir)
    try:
        job = store.get(job_id)
        assert job is not None and job.status is JobStatus.QUEUED and job.attempts == 0  # the attempt given back
    finally:
        store.close()


def test_two_servers_cannot_share_a_jobs_dir(tmp_path: Path, serve_in_subprocess: Any) -> None:
    args = ("--jobs-dir", str(tmp_path / "jobs"))
    with serve_in_subprocess("slow.py:Slow", *args), serve_in_subprocess("slow.py:Slow", *args, ready=False) as second:
        assert second.wait() != 0
        assert "is in use by another server" in second.stderr
        assert "Traceback" not in second.stderr


def test_a_jobs_dir_that_cannot_be_made_is_a_one_line_error(tmp_path: Path, serve_in_subprocess: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with serve_in_subprocess("slow.py:Slow", "--jobs-dir", str(blocker / "jobs"), ready=False) as server:
        assert server.wait() != 0
        assert f"cannot use {blocker / 'jobs'} as the jobs directory" in server.stderr
        assert "Traceback" not in server.stderr


def test_several_workers_share_one_jobs_dir_and_run_each_job_once(tmp_path: Path, serve_in_subprocess: Any) -> None:
    args = ("--jobs-dir", str(tmp_path / "jobs"), "--workers", "2")
    with serve_in_subprocess("slow.py:Slow", *args) as server:
        ids = submit_all(server.url, "/asleep/jobs", [{"seconds": 0.05} for _ in range(40)])
        jobs = wait_until_all_finished(server, "asleep", len(ids))
        assert sorted(job["id"] for job in jobs) == sorted(ids)
        assert {(job["status"], job["attempts"]) for job in jobs} == {("succeeded", 1)}
        # the parent holds the folder for its workers: a second server is refused
        with serve_in_subprocess("slow.py:Slow", "--jobs-dir", str(tmp_path / "jobs"), ready=False) as second:
            assert second.wait() != 0 and "is in use by another server" in second.stderr
        assert server.stop() == 0
