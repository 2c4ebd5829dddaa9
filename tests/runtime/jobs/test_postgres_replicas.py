"""Two real servers (``bundle serve --jobs-url postgresql://...``) on one PostgreSQL queue.

The service records every call with its server's process group (fixtures/services/shared_queue.py)
and holds it until the test creates the gate file, so the tests see which replica ran what,
and how many times, with no timing assumptions.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from fixtures.postgres import PostgresCluster
from fixtures.servers import ProcessServer

SERVICE = "shared_queue.py:SharedQueue"
#: generous: a replica that was killed is only taken for dead once its lease has run out
DEADLINE = 180.0

Serve = Callable[..., AbstractContextManager[ProcessServer]]


def _calls(record: Path) -> list[tuple[int, int]]:
    """(x, process group) per recorded model call, in order."""
    if not record.exists():
        return []
    return [(int(x), int(group)) for x, group in (line.split() for line in record.read_text().splitlines())]


def _until(condition: Callable[[], Any], what: str, servers: list[ProcessServer]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (found := condition()):
        if time.monotonic() > deadline:
            logs = "\n".join(s.stderr[-2000:] for s in servers)
            raise AssertionError(f"gave up waiting for {what}\n{logs}")
        time.sleep(0.05)
    return found


def _replicas(serve: Serve, stack: ExitStack, database: str, tmp_path: Path, *extra: str) -> list[ProcessServer]:
    env = {"MODELBUNDLE_TEST_RECORD": str(tmp_path / "calls"), "MODELBUNDLE_TEST_GATE": str(tmp_path / "gate")}
    return [stack.enter_context(serve(SERVICE, "--jobs-url", database, *extra, env=env)) for _ in range(2)]


def _status(server: ProcessServer, job_id: str) -> dict[str, Any]:
    answer = server.get(f"/square/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def database(postgres: PostgresCluster) -> str:
    return postgres.new_database()


def test_two_replicas_share_the_queue_and_run_each_job_once(
    serve_in_subprocess: Serve, database: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        servers = _replicas(serve_in_subprocess, stack, database, tmp_path, "--job-concurrency", "2")
        jobs: dict[int, tuple[str, ProcessServer]] = {}
        for x in range(12):
            submitted_to = servers[x % 2]
            answer = submitted_to.post("/square/jobs", json={"x": x})
            assert answer.status_code == 202, answer.text
            jobs[x] = (answer.json()["id"], submitted_to)
        record = tmp_path / "calls"
        # two slots each: four calls held at the gate can only be two on each replica
        running = _until(lambda: len(_calls(record)) >= 4 and _calls(record), "four running jobs", servers)
        assert sorted(group for _, group in running) == sorted([servers[0].proc.pid] * 2 + [servers[1].proc.pid] * 2)
        (tmp_path / "gate").touch()

        def other(server: ProcessServer) -> ProcessServer:
            return servers[1] if server is servers[0] else servers[0]

        # any replica answers for any job: ask the one that did not take the submit
        for x, (job_id, submitted_to) in jobs.items():
            _until(lambda: _status(other(submitted_to), job_id)["status"] == "succeeded", f"job {x}", servers)  # noqa: B023
            result = other(submitted_to).get(f"/square/jobs/{job_id}/result")
            assert (result.status_code, result.json()) == (200, x * x)
            assert _status(submitted_to, job_id)["attempts"] == 1
    calls = Counter(x for x, _ in _calls(record))
    assert calls == Counter(range(12)), "a job ran twice, or not at all"
    assert {group for _, group in _calls(record)} == {s.proc.pid for s in servers}


def test_a_job_of_a_killed_replica_runs_again_on_the_other(
    serve_in_subprocess: Serve, database: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        # a short lease: the survivor takes the killed replica's job 3 s after its last heartbeat
        servers = _replicas(serve_in_subprocess, stack, database, tmp_path, "--job-lease", "3s")
        answer = servers[0].post("/square/jobs", json={"x": 7})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        record = tmp_path / "calls"
        [(_, group)] = _until(lambda: _calls(record), "the job to start", servers)
        victim = next(s for s in servers if s.proc.pid == group)
        survivor = next(s for s in servers if s is not victim)
        os.killpg(victim.proc.pid, signal.SIGKILL)  # the replica and its workers, mid-job
        victim.proc.wait()
        (tmp_path / "gate").touch()
        done = _until(
            lambda: (status := _status(survivor, job_id))["status"] in ("succeeded", "failed") and status,
            "the job to run again on the surviving replica", [survivor],
        )
        assert (done["status"], done["attempts"]) == ("succeeded", 2), done
        result = survivor.get(f"/square/jobs/{job_id}/result")
        assert (result.status_code, result.json()) == (200, 49)
    assert _calls(record) == [(7, victim.proc.pid), (7, survivor.proc.pid)]
