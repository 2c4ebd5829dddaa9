"""``PostgresJobStore``: one jobs queue shared by several replicas, on PostgreSQL.

Every replica runs the same runner against the same tables: ``claim`` takes the
oldest queued job with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two replicas never
get one job and neither waits on the other's claim. A running job is leased to
its owner: the owner's runner renews ``heartbeat_at``; another replica's
``requeue_stale`` hands back only jobs whose heartbeat is older than the lease,
so a live replica's jobs are never taken (replicas' clocks must agree to well
within the lease, as NTP keeps them). Any replica answers status and result.

Bodies and results above ``inline_limit`` bytes go to a blob backend of the
bundle stores (``file://`` shared by every replica, or ``s3://``) under
``jobs/<id>/...``; without one they stay in the row (``bytea``).

The schema is made on first use, under an advisory lock, so two replicas that
start at once do not race on ``CREATE TABLE IF NOT EXISTS``.

psycopg (v3) is the optional extra ``modelbundle[postgres]``, imported when a
store is made.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ServeError
from ._store import DEFAULT_INLINE_LIMIT, Delivery, Job, JobStatus, JobStore, NewJob, new_job_id

if TYPE_CHECKING:
    from ...stores import BlobBackend

#: any constant of ours: the key of the advisory lock held while the schema is made
_SCHEMA_LOCK = 0x6D62_6A6F_6273  # "mbjobs"
#: connections kept open for reuse (the runner and the routes call from several threads)
POOL_SIZE = 8
CONNECT_TIMEOUT = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS modelbundle_jobs (
    id text PRIMARY KEY,
    api text NOT NULL,
    status text NOT NULL,
    content_type text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    progress double precision NOT NULL DEFAULT 0,
    message text,
    error text,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    idempotency_key text,
    callback_url text,
    owner text,
    heartbeat_at double precision,
    body bytea,
    body_blob text,
    result bytea,
    result_blob text,
    UNIQUE (api, idempotency_key)
);
-- a table made before jobs kept their trace context gets the column
ALTER TABLE modelbundle_jobs ADD COLUMN IF NOT EXISTS traceparent text;
CREATE INDEX IF NOT EXISTS modelbundle_jobs_queued ON modelbundle_jobs (created_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS modelbundle_jobs_running ON modelbundle_jobs (heartbeat_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS modelbundle_jobs_by_api ON modelbundle_jobs (api, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS modelbundle_jobs_finished ON modelbundle_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS modelbundle_job_deliveries (
    id text PRIMARY KEY,
    job_id text NOT NULL REFERENCES modelbundle_jobs (id) ON DELETE CASCADE,
    url text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    last_status integer,
    last_error text,
    delivered boolean NOT NULL DEFAULT false,
    created_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS modelbundle_job_deliveries_due ON modelbundle_job_deliveries (next_attempt_at)
    WHERE NOT delivered AND next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS modelbundle_job_deliveries_job ON modelbundle_job_deliveries (job_id);
"""

_JOB_COLUMNS = (
    "id, api, status, content_type, attempts, progress, message, error, created_at, started_at,"
    " finished_at, idempotency_key, callback_url, owner, heartbeat_at, traceparent"
)
_DELIVERY_COLUMNS = "id, job_id, url, attempts, next_attempt_at, last_status, last_error, delivered, created_at"
#: what a job finished by requeue_stale says, once it has used its attempts
_OUT_OF_ATTEMPTS = "its server stopped while it ran, {attempts} times (--job-max-attempts {max_attempts})"


def _job(row: dict[str, Any]) -> Job:
    return Job(**{**row, "status": JobStatus(row["status"])})


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(**row)


class PostgresJobStore(JobStore):
    """Jobs in the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``).

    ``blobs``: where payloads above ``inline_limit`` go (shared by every replica); None keeps
    them in the rows.
    """

    def __init__(self, url: str, *, blobs: BlobBackend | None = None, inline_limit: int = DEFAULT_INLINE_LIMIT) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ServeError(
                "--jobs-url postgresql://... needs psycopg: pip install 'modelbundle[postgres]'"
            ) from None
        self.url = url
        self.blobs = blobs
        self.inline_limit = inline_limit
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(_SCHEMA)

    # -- connections ----------------------------------------------------------------------
    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self.url, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise ServeError(f"cannot reach the jobs database {_redacted(self.url)}: {_first_line(exc)}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in one transaction on a pooled connection; committed on success."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        import psycopg

        broken = True
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
            broken = False
        except psycopg.OperationalError as exc:  # the server went away or restarted: one line, and new connections next time
            with self._lock:
                stale, self._idle = self._idle, []
            for other in stale:
                other.close()
            raise ServeError(f"the jobs database {_redacted(self.url)} failed: {_first_line(exc)}") from exc
        finally:
            with self._lock:
                if broken or self._closed or len(self._idle) >= POOL_SIZE:
                    conn.close()
                else:
                    self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- payloads -------------------------------------------------------------------------
    def _put_payload(self, job_id: str, kind: str, data: bytes) -> tuple[bytes | None, str | None]:
        """(bytes for the row, blob key): the data inline, or in a blob when large and there are blobs."""
        if self.blobs is None or len(data) <= self.inline_limit:
            return data, None
        key = f"jobs/{job_id}/{kind}-{uuid.uuid4().hex}"  # unique: a re-run never overwrites a kept result
        self.blobs.put_bytes(key, data)
        return None, key

    def _get_payload(self, inline: bytes | None, key: str | None) -> bytes | None:
        if key is None:
            return None if inline is None else bytes(inline)
        if self.blobs is None:
            raise ServeError(f"a job payload is in the blob store ({key}) but this server has no --jobs-blobs")
        data = self.blobs.get_bytes(key)
        if data is None:
            raise ServeError(f"a job payload is missing from the blob store: {key}")
        return data

    def _drop_blobs(self, keys: Iterable[str | None]) -> None:
        for key in keys:
            if key is not None and self.blobs is not None:
                self.blobs.delete(key)

    # -- submit and read ------------------------------------------------------------------
    def submit(self, job: NewJob) -> tuple[Job, bool]:
        job_id = new_job_id()
        body, body_blob = self._put_payload(job_id, "body", job.body)
        with self._transaction() as cur:
            cur.execute(
                f"INSERT INTO modelbundle_jobs (id, api, status, content_type, created_at, idempotency_key,"
                f" callback_url, body, body_blob, traceparent) VALUES (%s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (api, idempotency_key) DO NOTHING RETURNING {_JOB_COLUMNS}",
                (job_id, job.api, job.content_type, time.time(), job.idempotency_key, job.callback_url, body, body_blob,
                 job.traceparent),
            )
            row = cur.fetchone()
            if row is None:  # the key was used: the job it made (the conflict waited for its commit)
                cur.execute(
                    f"SELECT {_JOB_COLUMNS} FROM modelbundle_jobs WHERE api = %s AND idempotency_key = %s",
                    (job.api, job.idempotency_key),
                )
                existing = cur.fetchone()
        if row is not None:
            return _job(row), True
        self._drop_blobs([body_blob])
        assert existing is not None, "a conflicting idempotency key without its job"
        return _job(existing), False

    def get(self, job_id: str) -> Job | None:
        with self._transaction() as cur:
            cur.execute(f"SELECT {_JOB_COLUMNS} FROM modelbundle_jobs WHERE id = %s", (job_id,))
            row = cur.fetchone()
        return None if row is None else _job(row)

    def list_jobs(self, api: str, status: JobStatus | None = None, limit: int = 100) -> list[Job]:
        with self._transaction() as cur:
            cur.execute(
                f"SELECT {_JOB_COLUMNS} FROM modelbundle_jobs WHERE api = %s AND (%s::text IS NULL OR status = %s)"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (api, None if status is None else status.value, None if status is None else status.value, limit),
            )
            return [_job(row) for row in cur.fetchall()]

    def read_body(self, job_id: str) -> bytes:
        with self._transaction() as cur:
            cur.execute("SELECT body, body_blob FROM modelbundle_jobs WHERE id = %s", (job_id,))
            row = cur.fetchone()
        if row is None:
            raise KeyError(job_id)
        return self._get_payload(row["body"], row["body_blob"]) or b""

    def read_result(self, job_id: str) -> bytes | None:
        with self._transaction() as cur:
            cur.execute("SELECT status, result, result_blob FROM modelbundle_jobs WHERE id = %s", (job_id,))
            row = cur.fetchone()
        if row is None or row["status"] != JobStatus.SUCCEEDED.value:
            return None
        return self._get_payload(row["result"], row["result_blob"])

    # -- running --------------------------------------------------------------------------
    def claim(self, owner: str, apis: Sequence[str]) -> Job | None:
        now = time.time()
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE modelbundle_jobs SET status = 'running', attempts = attempts + 1, started_at = %s,"
                f" heartbeat_at = %s, owner = %s, progress = 0, message = NULL"
                f" WHERE id = (SELECT id FROM modelbundle_jobs WHERE status = 'queued' AND api = ANY(%s)"
                f"  ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_JOB_COLUMNS}",
                (now, now, owner, list(apis)),
            )
            row = cur.fetchone()
        return None if row is None else _job(row)

    def heartbeat(self, owner: str, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        with self._transaction() as cur:
            cur.execute(
                "UPDATE modelbundle_jobs SET heartbeat_at = %s WHERE owner = %s AND status = 'running'"
                " AND id = ANY(%s) RETURNING id",
                (time.time(), owner, ids),
            )
            alive = {row["id"] for row in cur.fetchall()}
        return set(ids) - alive

    def set_progress(self, job_id: str, owner: str, fraction: float, message: str | None) -> bool:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE modelbundle_jobs SET progress = %s, message = %s WHERE id = %s AND owner = %s AND status = 'running'",
                (fraction, message, job_id, owner),
            )
            return bool(cur.rowcount)

    def finish(self, job_id: str, owner: str, *, result: bytes | None = None, error: str | None = None) -> bool:
        if (result is None) == (error is None):
            raise ValueError("finish takes exactly one of result and error")
        inline, blob = self._put_payload(job_id, "result", result) if result is not None else (None, None)
        now = time.time()
        with self._transaction() as cur:
            if result is not None:
                cur.execute(
                    "UPDATE modelbundle_jobs SET status = 'succeeded', result = %s, result_blob = %s, progress = 1,"
                    " finished_at = %s WHERE id = %s AND owner = %s AND status = 'running' RETURNING callback_url",
                    (inline, blob, now, job_id, owner),
                )
            else:
                cur.execute(
                    "UPDATE modelbundle_jobs SET status = 'failed', error = %s, finished_at = %s"
                    " WHERE id = %s AND owner = %s AND status = 'running' RETURNING callback_url",
                    (error, now, job_id, owner),
                )
            row = cur.fetchone()
            if row is not None:
                _add_delivery(cur, job_id, row["callback_url"], now)
        if row is None:  # cancelled or taken for dead meanwhile: the result is discarded
            self._drop_blobs([blob])
        return row is not None

    def cancel(self, job_id: str) -> Job | None:
        now = time.time()
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE modelbundle_jobs SET status = 'cancelled', finished_at = %s, error = 'cancelled'"
                f" WHERE id = %s AND status IN ('queued', 'running') RETURNING {_JOB_COLUMNS}",
                (now, job_id),
            )
            row = cur.fetchone()
            if row is not None:
                _add_delivery(cur, job_id, row["callback_url"], now)
                return _job(row)
            cur.execute(f"SELECT {_JOB_COLUMNS} FROM modelbundle_jobs WHERE id = %s", (job_id,))
            row = cur.fetchone()
        return None if row is None else _job(row)

    # -- recovery and retention -----------------------------------------------------------
    def requeue_stale(self, stale_before: float, max_attempts: int) -> tuple[int, int]:
        now = time.time()
        with self._transaction() as cur:
            # rows another replica is changing right now are skipped, not waited for: the next sweep sees them
            cur.execute(
                "SELECT id, attempts, callback_url FROM modelbundle_jobs WHERE status = 'running' AND heartbeat_at < %s"
                " FOR UPDATE SKIP LOCKED",
                (stale_before,),
            )
            stale = cur.fetchall()
            spent = [row for row in stale if row["attempts"] >= max_attempts]
            again = [row["id"] for row in stale if row["attempts"] < max_attempts]
            if again:
                cur.execute(
                    "UPDATE modelbundle_jobs SET status = 'queued', owner = NULL, heartbeat_at = NULL WHERE id = ANY(%s)",
                    (again,),
                )
            for row in spent:
                reason = _OUT_OF_ATTEMPTS.format(attempts=row["attempts"], max_attempts=max_attempts)
                cur.execute(
                    "UPDATE modelbundle_jobs SET status = 'failed', error = %s, finished_at = %s, owner = NULL WHERE id = %s",
                    (reason, now, row["id"]),
                )
                _add_delivery(cur, row["id"], row["callback_url"], now)
        return len(again), len(spent)

    def requeue_owned(self, owner: str) -> int:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE modelbundle_jobs SET status = 'queued', owner = NULL, heartbeat_at = NULL,"
                " attempts = GREATEST(attempts - 1, 0) WHERE owner = %s AND status = 'running'",
                (owner,),
            )
            return int(cur.rowcount)

    def purge(self, finished_before: float) -> int:
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM modelbundle_jobs WHERE finished_at < %s RETURNING body_blob, result_blob",
                (finished_before,),
            )
            rows = cur.fetchall()
        # after the commit: a blob without its row is garbage, a row without its blob would be an error
        self._drop_blobs(key for row in rows for key in (row["body_blob"], row["result_blob"]))
        return len(rows)

    # -- webhooks -------------------------------------------------------------------------
    def claim_deliveries(self, now: float, lease: float, limit: int) -> list[Delivery]:
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE modelbundle_job_deliveries SET next_attempt_at = %s WHERE id IN ("
                f" SELECT id FROM modelbundle_job_deliveries WHERE NOT delivered AND next_attempt_at <= %s"
                f" ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {_DELIVERY_COLUMNS}",
                (now + lease, now, limit),
            )
            rows = cur.fetchall()
        return sorted((_delivery(row) for row in rows), key=lambda d: (d.created_at, d.id))

    def record_delivery(
        self,
        delivery_id: str,
        *,
        status: int | None,
        error: str | None,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE modelbundle_job_deliveries SET attempts = attempts + 1, last_status = %s, last_error = %s,"
                " delivered = %s, next_attempt_at = %s WHERE id = %s",
                (status, error, delivered, next_attempt_at, delivery_id),
            )

    def deliveries(self, job_id: str) -> list[Delivery]:
        with self._transaction() as cur:
            cur.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM modelbundle_job_deliveries WHERE job_id = %s ORDER BY created_at, id",
                (job_id,),
            )
            return [_delivery(row) for row in cur.fetchall()]


def _add_delivery(cur: Any, job_id: str, callback_url: str | None, now: float) -> None:
    """A webhook due now for a job that just finished, in the transaction that finished it."""
    if callback_url:
        cur.execute(
            "INSERT INTO modelbundle_job_deliveries (id, job_id, url, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, job_id, callback_url, now, now),
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
