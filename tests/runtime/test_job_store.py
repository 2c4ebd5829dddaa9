"""The JobStore contract, over every store (SQLite here; PostgreSQL joins the ``store`` params)."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelbundle.runtime.jobs import JobStatus, JobStore, NewJob, SQLiteJobStore
from modelbundle.runtime.jobs._sqlite import _SCHEMA, DATABASE_NAME


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    (tmp_path / "jobs").mkdir()
    opened = SQLiteJobStore(tmp_path / "jobs", inline_limit=1024)
    yield opened
    opened.close()


def job(api: str = "predict", body: bytes = b'{"x": 1}', **kwargs: str) -> NewJob:
    return NewJob(api=api, body=body, content_type="application/json", **kwargs)


def test_claims_are_exclusive_across_threads(store: JobStore) -> None:
    ids = {store.submit(job(body=str(i).encode()))[0].id for i in range(200)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        while (got := store.claim(owner, ["predict"])) is not None:
            with lock:
                claimed.append(got.id)

    threads = [threading.Thread(target=worker, args=(f"owner-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_claim_takes_the_oldest_of_the_apis_asked_for(store: JobStore) -> None:
    first = store.submit(job("a"))[0]
    store.submit(job("b"))
    second = store.submit(job("a"))[0]
    assert store.claim("me", ["c"]) is None
    got = store.claim("me", ["a"])
    assert got is not None and got.id == first.id
    assert got.status is JobStatus.RUNNING and got.attempts == 1 and got.owner == "me" and got.started_at is not None
    assert [j.id for j in store.list_jobs("a")] == [second.id, first.id]
    assert [j.id for j in store.list_jobs("a", JobStatus.QUEUED)] == [second.id]


def test_idempotency_key_gives_one_job_even_when_submitted_at_once(store: JobStore) -> None:
    results: list[tuple[str, bool]] = []

    def submit() -> None:
        made, created = store.submit(job(idempotency_key="k1"))
        results.append((made.id, created))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert store.submit(job("other", idempotency_key="k1"))[1]  # keys are per API


def test_bodies_and_results_round_trip_inline_and_as_files(store: JobStore) -> None:
    small, big = b"s" * 10, b"b" * 5000
    for body in (small, big):
        made = store.submit(job(body=body))[0]
        assert store.read_body(made.id) == body
        claimed = store.claim("me", ["predict"])
        assert claimed is not None and claimed.id == made.id
        assert store.read_result(made.id) is None
        assert store.finish(made.id, "me", result=body[::-1])
        assert store.read_result(made.id) == body[::-1]
        finished = store.get(made.id)
        assert finished is not None and finished.status is JobStatus.SUCCEEDED and finished.progress == 1


def test_a_job_keeps_the_trace_context_of_its_submit(store: JobStore) -> None:
    traceparent = "00-" + "1f" * 16 + "-" + "2e" * 8 + "-01"
    traced, _ = store.submit(job(traceparent=traceparent))
    untraced, _ = store.submit(job())
    assert (traced.traceparent, untraced.traceparent) == (traceparent, None)
    claimed = [store.claim("me", ["predict"]), store.claim("me", ["predict"])]  # what the runner reads
    assert [(j.id, j.traceparent) for j in claimed if j is not None] == [(traced.id, traceparent), (untraced.id, None)]


def test_a_database_made_before_trace_contexts_gets_the_column(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    old = sqlite3.connect(folder / DATABASE_NAME)
    old.executescript(_SCHEMA.replace("    traceparent TEXT,\n", ""))
    old.execute("INSERT INTO jobs (id, api, status, content_type, body, created_at) VALUES ('j1', 'predict', 'queued', 'application/json', x'7b7d', 1.0)")
    old.commit()
    assert "traceparent" not in {row[1] for row in old.execute("PRAGMA table_info(jobs)")}
    old.close()
    store = SQLiteJobStore(folder)
    try:
        before = store.get("j1")
        assert before is not None and before.traceparent is None
        traced, _ = store.submit(job(traceparent="00-" + "3a" * 16 + "-" + "4b" * 8 + "-00"))
        assert traced.traceparent == "00-" + "3a" * 16 + "-" + "4b" * 8 + "-00"
    finally:
        store.close()


def test_finish_only_by_the_owner_of_a_running_job(store: JobStore) -> None:
    made = store.submit(job())[0]
    assert store.claim("me", ["predict"]) is not None
    assert not store.finish(made.id, "someone else", result=b"x")
    assert store.set_progress(made.id, "me", 0.25, "a quarter")
    assert not store.set_progress(made.id, "someone else", 0.5, None)
    current = store.get(made.id)
    assert current is not None and current.progress == 0.25 and current.message == "a quarter"
    cancelled = store.cancel(made.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert store.heartbeat("me", [made.id]) == {made.id}  # the runner learns it was cancelled
    assert not store.finish(made.id, "me", result=b"x")  # and its result is discarded
    assert store.read_result(made.id) is None
    again = store.cancel(made.id)
    assert again is not None and again.status is JobStatus.CANCELLED
    assert store.cancel("unknown") is None


def test_a_cancelled_queued_job_is_never_claimed(store: JobStore) -> None:
    made = store.submit(job())[0]
    store.cancel(made.id)
    assert store.claim("me", ["predict"]) is None


def test_requeue_stale_keeps_attempts_and_fails_at_the_maximum(store: JobStore) -> None:
    made = store.submit(job())[0]
    for attempt in (1, 2):
        claimed = store.claim("dead", ["predict"])
        assert claimed is not None and claimed.attempts == attempt
        assert store.requeue_stale(math.inf, max_attempts=3) == (1, 0)
    assert store.claim("dead", ["predict"]) is not None
    assert store.requeue_stale(math.inf, max_attempts=3) == (0, 1)
    failed = store.get(made.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.attempts == 3
    assert failed.error is not None and "3 times" in failed.error


def test_requeue_stale_spares_runners_that_beat(store: JobStore) -> None:
    made = store.submit(job())[0]
    assert store.claim("alive", ["predict"]) is not None
    before = time.time() - 60
    assert store.requeue_stale(before, max_attempts=3) == (0, 0)
    assert store.heartbeat("alive", [made.id]) == set()


def test_requeue_owned_gives_the_attempt_back(store: JobStore) -> None:
    mine, theirs = store.submit(job())[0], store.submit(job())[0]
    assert store.claim("me", ["predict"]) is not None
    assert store.claim("them", ["predict"]) is not None
    assert store.requeue_owned("me") == 1
    back, other = store.get(mine.id), store.get(theirs.id)
    assert back is not None and back.status is JobStatus.QUEUED and back.attempts == 0 and back.owner is None
    assert other is not None and other.status is JobStatus.RUNNING


def test_purge_removes_finished_jobs_and_their_files(store: JobStore) -> None:
    old = store.submit(job(body=b"o" * 5000))[0]
    store.claim("me", ["predict"])
    store.finish(old.id, "me", result=b"r" * 5000)
    waiting = store.submit(job())[0]
    assert store.purge(time.time() - 3600) == 0
    assert store.purge(time.time() + 1) == 1
    assert store.get(old.id) is None and store.get(waiting.id) is not None
    if isinstance(store, SQLiteJobStore):
        assert list(store.files.directory.iterdir()) == []


def test_a_finished_job_with_a_callback_gets_one_delivery_due_now(store: JobStore) -> None:
    made = store.submit(job(callback_url="http://127.0.0.1:9/hook"))[0]
    plain = store.submit(job())[0]
    store.claim("me", ["predict"])
    store.claim("me", ["predict"])
    assert store.finish(made.id, "me", error="boom") and store.finish(plain.id, "me", result=b"1")
    due = store.claim_deliveries(time.time() + 1, lease=60, limit=10)
    assert [(d.job_id, d.url, d.attempts, d.delivered) for d in due] == [(made.id, "http://127.0.0.1:9/hook", 0, False)]
    assert store.claim_deliveries(time.time() + 1, lease=60, limit=10) == []  # leased to the first sender
    store.record_delivery(due[0].id, status=503, error=None, delivered=False, next_attempt_at=time.time() - 1)
    retry = store.claim_deliveries(time.time(), lease=60, limit=10)
    assert [d.attempts for d in retry] == [1]
    store.record_delivery(retry[0].id, status=200, error=None, delivered=True, next_attempt_at=None)
    assert store.claim_deliveries(time.time() + 3600, lease=60, limit=10) == []
    [delivery] = store.deliveries(made.id)
    assert delivery.delivered and delivery.attempts == 2 and delivery.last_status == 200
