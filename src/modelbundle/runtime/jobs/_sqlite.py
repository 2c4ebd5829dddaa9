"""``SQLiteJobStore``: the default job store, one SQLite database (WAL) in a directory.

Every write is one ``BEGIN IMMEDIATE`` transaction, so a claim is atomic across the threads of
a worker and the worker processes of one server (each has its own connection). ``synchronous
= FULL``: a committed job or result survives the machine losing power, not only the process
dying. Bodies and results above ``inline_limit`` are files beside the database (``_files.py``).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._files import PayloadFiles
from ._store import DEFAULT_INLINE_LIMIT, Delivery, Job, JobStatus, JobStore, NewJob, new_job_id

DATABASE_NAME = "jobs.sqlite3"
_JOB_COLUMNS = (
    "id, api, status, content_type, attempts, progress, message, error, created_at, started_at, "
    "finished_at, idempotency_key, callback_url, owner, heartbeat_at, traceparent"
)
_DELIVERY_COLUMNS = "id, job_id, url, attempts, next_attempt_at, last_status, last_error, delivered, created_at"
_FINISHED = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    api TEXT NOT NULL,
    status TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB,
    body_file TEXT,
    result BLOB,
    result_file TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    idempotency_key TEXT,
    callback_url TEXT,
    owner TEXT,
    heartbeat_at REAL,
    traceparent TEXT,
    UNIQUE (api, idempotency_key)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_api ON jobs (api, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_status INTEGER,
    last_error TEXT,
    delivered INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (delivered, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_job ON deliveries (job_id);
"""


class SQLiteJobStore(JobStore):
    """Jobs in ``<directory>/jobs.sqlite3``; see the module docstring."""

    def __init__(self, directory: Path, *, inline_limit: int = DEFAULT_INLINE_LIMIT) -> None:
        self.directory = directory
        self.inline_limit = inline_limit
        self.files = PayloadFiles(directory)
        # one connection per store, used under a lock: sqlite3 objects must not be shared unlocked
        self._db = sqlite3.connect(directory / DATABASE_NAME, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        # a database made before jobs kept their trace context gets the column (a no-op later)
        if "traceparent" not in {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}:
            self._db.execute("ALTER TABLE jobs ADD COLUMN traceparent TEXT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at its start (BEGIN IMMEDIATE), so read-then-write is atomic."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- submit and read ---------------------------------------------------------------
    def submit(self, job: NewJob) -> tuple[Job, bool]:
        if job.idempotency_key is not None:
            existing = self._by_key(job.api, job.idempotency_key)
            if existing is not None:
                return existing, False
        job_id, now = new_job_id(), time.time()
        body, body_file = self._place(job_id, "body", job.body)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO jobs (id, api, status, content_type, body, body_file, created_at, idempotency_key, callback_url,"
                    " traceparent) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, job.api, job.content_type, body, body_file, now, job.idempotency_key, job.callback_url,
                     job.traceparent),
                )
        except sqlite3.IntegrityError:  # the same key, submitted at the same moment by another thread or worker
            self.files.remove(body_file)
            existing = self._by_key(job.api, job.idempotency_key or "")
            if existing is None:
                raise
            return existing, False
        created = self.get(job_id)
        assert created is not None
        return created, True

    def _by_key(self, api: str, key: str) -> Job | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE api = ? AND idempotency_key = ?", (api, key))
        return _job(rows[0]) if rows else None

    def _place(self, job_id: str, kind: str, data: bytes) -> tuple[bytes | None, str | None]:
        """``(inline bytes, None)`` or, above the limit, ``(None, file name)``."""
        if len(data) <= self.inline_limit:
            return data, None
        return None, self.files.write(job_id, kind, data)

    def get(self, job_id: str) -> Job | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(self, api: str, status: JobStatus | None = None, limit: int = 100) -> list[Job]:
        if status is None:
            rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE api = ? ORDER BY seq DESC LIMIT ?", (api, limit))
        else:
            rows = self._read(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE api = ? AND status = ? ORDER BY seq DESC LIMIT ?",
                (api, status.value, limit),
            )
        return [_job(row) for row in rows]

    def read_body(self, job_id: str) -> bytes:
        rows = self._read("SELECT body, body_file FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise KeyError(job_id)
        body, body_file = rows[0]
        return bytes(body) if body_file is None else self.files.read(body_file)

    def read_result(self, job_id: str) -> bytes | None:
        rows = self._read("SELECT result, result_file FROM jobs WHERE id = ? AND status = 'succeeded'", (job_id,))
        if not rows:
            return None
        result, result_file = rows[0]
        return self.files.read(result_file) if result_file is not None else bytes(result or b"")

    # -- running ----------------------------------------------------------------------
    def claim(self, owner: str, apis: Sequence[str]) -> Job | None:
        if not apis:
            return None
        marks = ", ".join("?" * len(apis))
        now = time.time()
        with self._write() as db:
            row = db.execute(
                f"SELECT id FROM jobs WHERE status = 'queued' AND api IN ({marks}) ORDER BY seq LIMIT 1", tuple(apis)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, heartbeat_at = ?,"
                " owner = ?, progress = 0, message = NULL WHERE id = ?",
                (now, now, owner, row[0]),
            )
        return self.get(row[0])

    def heartbeat(self, owner: str, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        with self._write() as db:
            db.execute(
                f"UPDATE jobs SET heartbeat_at = ? WHERE owner = ? AND status = 'running' AND id IN ({marks})",
                (time.time(), owner, *ids),
            )
            alive = {r[0] for r in db.execute(
                f"SELECT id FROM jobs WHERE owner = ? AND status = 'running' AND id IN ({marks})", (owner, *ids)
            )}
        return set(ids) - alive

    def set_progress(self, job_id: str, owner: str, fraction: float, message: str | None) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET progress = ?, message = ? WHERE id = ? AND owner = ? AND status = 'running'",
                (fraction, message, job_id, owner),
            )
        return cursor.rowcount == 1

    def finish(self, job_id: str, owner: str, *, result: bytes | None = None, error: str | None = None) -> bool:
        if (result is None) == (error is None):
            raise ValueError("finish takes a result or an error, not both or neither")
        inline, result_file = self._place(job_id, "result", result) if result is not None else (None, None)
        now = time.time()
        with self._write() as db:
            if result is not None:
                cursor = db.execute(
                    "UPDATE jobs SET status = 'succeeded', result = ?, result_file = ?, progress = 1, finished_at = ?"
                    " WHERE id = ? AND owner = ? AND status = 'running'",
                    (inline, result_file, now, job_id, owner),
                )
            else:
                cursor = db.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished_at = ? WHERE id = ? AND owner = ? AND status = 'running'",
                    (error, now, job_id, owner),
                )
            finished = cursor.rowcount == 1
            if finished:
                _add_delivery(db, job_id, now)
        if not finished:
            self.files.remove(result_file)
        return finished

    def cancel(self, job_id: str) -> Job | None:
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'cancelled', error = 'cancelled', finished_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (now, job_id),
            )
            if cursor.rowcount == 1:
                _add_delivery(db, job_id, now)
        return self.get(job_id)

    # -- recovery and retention -------------------------------------------------------
    def requeue_stale(self, stale_before: float, max_attempts: int) -> tuple[int, int]:
        cutoff = stale_before if math.isfinite(stale_before) else 1e300
        now = time.time()
        with self._write() as db:
            failing = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE status = 'running' AND heartbeat_at < ? AND attempts >= ?", (cutoff, max_attempts)
            )]
            for job_id in failing:
                db.execute(
                    "UPDATE jobs SET status = 'failed', finished_at = ?, owner = NULL, error = ? WHERE id = ?",
                    (now, f"its server stopped while it ran, {max_attempts} times (--job-max-attempts {max_attempts})", job_id),
                )
                _add_delivery(db, job_id, now)
            requeued = db.execute(
                "UPDATE jobs SET status = 'queued', owner = NULL, heartbeat_at = NULL, progress = 0, message = NULL"
                " WHERE status = 'running' AND heartbeat_at < ?",
                (cutoff,),
            ).rowcount
        return requeued, len(failing)

    def requeue_owned(self, owner: str) -> int:
        with self._write() as db:
            return db.execute(
                "UPDATE jobs SET status = 'queued', attempts = max(attempts - 1, 0), owner = NULL, heartbeat_at = NULL,"
                " progress = 0, message = NULL WHERE status = 'running' AND owner = ?",
                (owner,),
            ).rowcount

    def purge(self, finished_before: float) -> int:
        with self._write() as db:
            rows = db.execute(
                "SELECT id, body_file, result_file FROM jobs WHERE status IN (?, ?, ?) AND finished_at < ?",
                (*_FINISHED, finished_before),
            ).fetchall()
            for job_id, _, _ in rows:
                db.execute("DELETE FROM deliveries WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        for _, body_file, result_file in rows:  # after the commit: a row never names a missing file
            self.files.remove(body_file, result_file)
        return len(rows)

    # -- webhooks ---------------------------------------------------------------------
    def claim_deliveries(self, now: float, lease: float, limit: int) -> list[Delivery]:
        with self._write() as db:
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE delivered = 0 AND next_attempt_at IS NOT NULL"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in rows:
                db.execute("UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", (now + lease, row[0]))
        return [_delivery(row) for row in rows]

    def record_delivery(
        self, delivery_id: str, *, status: int | None, error: str | None, delivered: bool, next_attempt_at: float | None
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, delivered = ?,"
                " next_attempt_at = ? WHERE id = ?",
                (status, error, int(delivered), None if delivered else next_attempt_at, delivery_id),
            )

    def deliveries(self, job_id: str) -> list[Delivery]:
        rows = self._read(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE job_id = ? ORDER BY created_at", (job_id,))
        return [_delivery(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _add_delivery(db: sqlite3.Connection, job_id: str, now: float) -> None:
    """A webhook due now for a job that just finished, if it has a callback URL (same transaction)."""
    db.execute(
        "INSERT INTO deliveries (id, job_id, url, next_attempt_at, created_at)"
        " SELECT ?, id, callback_url, ?, ? FROM jobs WHERE id = ? AND callback_url IS NOT NULL",
        (new_job_id(), now, now, job_id),
    )


def _job(row: tuple[Any, ...]) -> Job:
    (job_id, api, status, content_type, attempts, progress, message, error, created_at, started_at,
     finished_at, key, callback_url, owner, heartbeat_at, traceparent) = row
    return Job(
        id=job_id, api=api, status=JobStatus(status), content_type=content_type, attempts=attempts,
        progress=progress, message=message, error=error, created_at=created_at, started_at=started_at,
        finished_at=finished_at, idempotency_key=key, callback_url=callback_url, owner=owner, heartbeat_at=heartbeat_at,
        traceparent=traceparent,
    )


def _delivery(row: tuple[Any, ...]) -> Delivery:
    delivery_id, job_id, url, attempts, next_attempt_at, last_status, last_error, delivered, created_at = row
    return Delivery(
        id=delivery_id, job_id=job_id, url=url, attempts=attempts, next_attempt_at=next_attempt_at,
        last_status=last_status, last_error=last_error, delivered=bool(delivered), created_at=created_at,
    )
