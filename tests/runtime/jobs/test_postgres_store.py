"""PostgresJobStore on a real cluster: what several replicas sharing one queue rely on.

Each "replica" here is a store object of its own (its own connections) on one
database, as two servers would have; each test gets a fresh database.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.postgres import PostgresCluster
from modelbundle.errors import ServeError
from modelbundle.runtime.jobs import JobStatus, NewJob
from modelbundle.runtime.jobs._postgres import PostgresJobStore
from modelbundle.stores import open_blob_backend


@pytest.fixture
def database(postgres: PostgresCluster) -> str:
    return postgres.new_database()


_OPENED: list[PostgresJobStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def _store(url: str, **kwargs: object) -> PostgresJobStore:
    store = PostgresJobStore(url, **kwargs)  # type: ignore[arg-type]
    _OPENED.append(store)
    return store


def test_two_stores_starting_at_once_both_make_or_find_the_schema(database: str) -> None:
    stores: list[PostgresJobStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(_store(database))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    job, _ = stores[0].submit(NewJob("predict", b"{}", "application/json"))
    assert all(store.get(job.id) == job for store in stores)


def test_concurrent_claims_from_two_replicas_hand_out_each_job_once(database: str) -> None:
    first, second = _store(database), _store(database)
    submitted = {first.submit(NewJob("predict", str(i).encode(), "application/json"))[0].id for i in range(60)}
    claimed: list[tuple[str, str]] = []

    def drain(store: PostgresJobStore, owner: str) -> None:
        while (job := store.claim(owner, ["predict"])) is not None:
            claimed.append((owner, job.id))

    threads = [threading.Thread(target=drain, args=(store, f"{name}-{n}")) for n in range(3) for name, store in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(job_id for _, job_id in claimed)
    assert set(counts) == submitted
    assert max(counts.values()) == 1
    assert {owner[0] for owner, _ in claimed} == {"a", "b"}, "one replica claimed everything"
    assert all(second.get(job_id).attempts == 1 for job_id in submitted)  # type: ignore[union-attr]


def test_only_a_job_whose_lease_ran_out_is_requeued_and_out_of_attempts_it_fails(database: str) -> None:
    live, other = _store(database), _store(database)
    kept, _ = live.submit(NewJob("predict", b"1", "application/json"))
    orphan, _ = live.submit(NewJob("predict", b"2", "application/json", callback_url="http://127.0.0.1:9/hook"))
    assert live.claim("live", ["predict"]).id == kept.id  # type: ignore[union-attr]
    assert other.claim("dead", ["predict"]).id == orphan.id  # type: ignore[union-attr]
    lease_start = time.time()
    while time.time() <= lease_start:  # a heartbeat strictly after the lease's start
        time.sleep(0.001)
    assert live.heartbeat("live", [kept.id]) == set()

    assert other.requeue_stale(lease_start, max_attempts=2) == (1, 0)
    assert live.get(kept.id).status is JobStatus.RUNNING  # type: ignore[union-attr]
    requeued = live.get(orphan.id)
    assert requeued is not None and (requeued.status, requeued.owner, requeued.attempts) == (JobStatus.QUEUED, None, 1)
    assert other.heartbeat("dead", [orphan.id]) == {orphan.id}, "the dead owner must learn it lost the job"
    assert other.finish(orphan.id, "dead", result=b"late") is False

    assert live.claim("live", ["predict"]).attempts == 2  # type: ignore[union-attr]
    # now both leases run out: the job on its first attempt goes back, the one on its last fails
    assert other.requeue_stale(time.time() + 1, max_attempts=2) == (1, 1)
    assert live.get(kept.id).status is JobStatus.QUEUED  # type: ignore[union-attr]
    failed = live.get(orphan.id)
    assert failed is not None and failed.status is JobStatus.FAILED and "2" in (failed.error or "")
    assert [d.url for d in live.deliveries(orphan.id)] == ["http://127.0.0.1:9/hook"]


def test_large_payloads_live_in_the_blob_store_and_go_with_the_job(database: str, tmp_path: Path) -> None:
    blobs = open_blob_backend((tmp_path / "blobs").as_uri())
    store = _store(database, blobs=blobs, inline_limit=16)
    reader = _store(database, blobs=open_blob_backend((tmp_path / "blobs").as_uri()), inline_limit=16)
    body, result = b"x" * 1000, bytes(range(256)) * 10
    job, _ = store.submit(NewJob("predict", body, "application/octet-stream"))
    small, _ = store.submit(NewJob("predict", b"{}", "application/json"))
    assert len(blobs.list_keys("jobs")) == 1
    assert reader.read_body(job.id) == body and reader.read_body(small.id) == b"{}"
    assert store.claim("a", ["predict"]).id == job.id  # type: ignore[union-attr]
    assert reader.read_result(job.id) is None
    assert store.finish(job.id, "a", result=result)
    assert reader.read_result(job.id) == result, "another replica reads the result"
    assert len(blobs.list_keys(f"jobs/{job.id}")) == 2
    assert store.purge(time.time() + 1) == 1
    assert blobs.list_keys("jobs") == [] and reader.get(job.id) is None
    assert reader.get(small.id) is not None, "a queued job is never purged"


def test_one_idempotency_key_makes_one_job_across_replicas(database: str) -> None:
    stores = [_store(database) for _ in range(4)]
    answers: list[tuple[str, bool]] = []

    def submit(store: PostgresJobStore) -> None:
        job, created = store.submit(NewJob("predict", b"{}", "application/json", idempotency_key="k1"))
        answers.append((job.id, created))

    threads = [threading.Thread(target=submit, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({job_id for job_id, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False, False, False, True]


def test_deliveries_are_leased_to_one_sender_and_recorded(database: str) -> None:
    first, second = _store(database), _store(database)
    job, _ = first.submit(NewJob("predict", b"{}", "application/json", callback_url="http://127.0.0.1:9/hook"))
    first.claim("a", ["predict"])
    first.finish(job.id, "a", error="boom")
    now = time.time()
    taken = first.claim_deliveries(now, lease=60, limit=10)
    assert [d.job_id for d in taken] == [job.id]
    assert second.claim_deliveries(now, lease=60, limit=10) == [], "a leased delivery went to a second sender"
    second.record_delivery(taken[0].id, status=503, error="HTTP 503", delivered=False, next_attempt_at=now - 1)
    again = second.claim_deliveries(now, lease=60, limit=10)
    assert [(d.attempts, d.last_status) for d in again] == [(1, 503)]
    second.record_delivery(again[0].id, status=200, error=None, delivered=True, next_attempt_at=None)
    (done,) = first.deliveries(job.id)
    assert (done.delivered, done.attempts, done.last_status) == (True, 2, 200)
    assert first.claim_deliveries(now + 3600, lease=60, limit=10) == []


def test_an_unreachable_database_is_one_clear_error(postgres: PostgresCluster) -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{postgres.port}/no_such_database"
    with pytest.raises(ServeError, match=r"cannot reach the jobs database postgresql://postgres:\*\*\*@.*no_such_database") as info:
        _store(url)
    assert "secret" not in str(info.value) and "\n" not in str(info.value)


def test_a_database_that_goes_away_is_one_clear_error_and_the_next_call_reconnects(database: str) -> None:
    import psycopg

    store = _store(database)
    job, _ = store.submit(NewJob("predict", b"{}", "application/json"))
    with psycopg.connect(database, autocommit=True) as admin:  # what a server restart does to open connections
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(ServeError, match=r"the jobs database postgresql://.* failed: ") as info:
        store.get(job.id)
    assert "\n" not in str(info.value)
    assert store.get(job.id) == job
