"""``JobStore``: what the job runner and the job routes need from a queue's storage.

Two implementations: ``SQLiteJobStore`` (``_sqlite.py``, the default: one server owns a
directory) and ``PostgresJobStore`` (``_postgres.py``: several replicas share one queue).
Both are driven the same way, so a contract test runs over each.

Threading: every method is synchronous and may be called from several threads at once
(the runner calls them through ``asyncio.to_thread``); each method is one transaction.

Times are seconds since the epoch (``time.time()``), taken by the store's own clock.

Payloads: the store sees request bodies and results as opaque bytes. Above ``inline_limit``
bytes it keeps them outside its rows (SQLite: files beside the database written atomically,
tmp + rename; PostgreSQL: the bundle store's blob backends) and removes them with the job.
A result is whatever bytes the runner hands ``finish`` (the runner packs the API's encodings
into it, ``_result.py``); the store never interprets it.

Attempts count claims: ``claim`` adds one. A job re-queued because its server died keeps that
count (the attempt was spent); one handed back at a clean drain (``requeue_owned``) gets it back.
"""

from __future__ import annotations

import abc
import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: bodies and results above this many bytes live outside the store's rows
DEFAULT_INLINE_LIMIT = 64 * 1024


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class NewJob:
    """What ``submit`` records: the request exactly as the API would have received it."""

    api: str  # the API's name (not its route)
    body: bytes
    content_type: str
    idempotency_key: str | None = None
    callback_url: str | None = None  # http(s), already validated
    #: the submitting request's W3C trace context, so the run's span joins its trace (None when untraced)
    traceparent: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One webhook to send: the status document of ``job_id`` POSTed to ``url``."""

    id: str
    job_id: str
    url: str
    attempts: int  # POSTs tried so far
    #: None once it was delivered or given up
    next_attempt_at: float | None
    last_status: int | None  # the HTTP status of the last attempt; None: no answer (refused, timed out)
    last_error: str | None
    delivered: bool
    created_at: float


@dataclass(frozen=True)
class Job:
    """A job's row (never its body or result: ``read_body``/``read_result`` fetch those)."""

    id: str
    api: str
    status: JobStatus
    content_type: str
    attempts: int
    progress: float  # 0..1
    message: str | None  # the last progress message
    error: str | None  # why it failed (or was cancelled)
    created_at: float
    started_at: float | None  # the last claim
    finished_at: float | None
    idempotency_key: str | None
    callback_url: str | None
    owner: str | None  # the runner that claimed it last (None while queued)
    heartbeat_at: float | None  # the last time that runner said it was alive
    traceparent: str | None = None  # the submitting request's trace context (``NewJob``)


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore(abc.ABC):
    """The storage of one server's (or one replica set's) jobs. See the module docstring."""

    inline_limit: int = DEFAULT_INLINE_LIMIT

    # -- submit and read ---------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, job: NewJob) -> tuple[Job, bool]:
        """Record a queued job; ``(job, True)``.

        With an ``idempotency_key`` already used for the same API (whatever the job's status,
        until it is purged), nothing is recorded and the existing job comes back: ``(job, False)``.
        Two concurrent submits with one key create one job (a unique (api, key) constraint).
        A submitted job with a ``callback_url`` gets a webhook delivery when it finishes (``finish``).
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None:
        """The job, or None for an unknown (or purged) id."""

    @abc.abstractmethod
    def list_jobs(self, api: str, status: JobStatus | None = None, limit: int = 100) -> list[Job]:
        """Jobs of ``api``, newest first (by created_at, then id), at most ``limit``."""

    @abc.abstractmethod
    def read_body(self, job_id: str) -> bytes:
        """The request body as submitted (KeyError for an unknown job)."""

    @abc.abstractmethod
    def read_result(self, job_id: str) -> bytes | None:
        """The bytes ``finish`` stored, or None unless the job succeeded."""

    # -- running ----------------------------------------------------------------------
    @abc.abstractmethod
    def claim(self, owner: str, apis: Sequence[str]) -> Job | None:
        """Take the oldest queued job of one of ``apis``, or None when there is none.

        Atomic: the job goes queued -> running with attempts + 1, started_at and heartbeat_at
        = now, owner = ``owner``, progress 0, in one transaction, and no two callers (threads,
        processes, replicas) ever get the same job from one queued state (SQLite: BEGIN
        IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED).
        """

    @abc.abstractmethod
    def heartbeat(self, owner: str, job_ids: Iterable[str]) -> set[str]:
        """Mark ``owner`` alive for those of ``job_ids`` it still runs (heartbeat_at = now).

        Returns the ids among ``job_ids`` that are no longer running under ``owner``: cancelled
        (the runner stops them) or re-queued by ``requeue_stale`` (the runner drops them).
        """

    @abc.abstractmethod
    def set_progress(self, job_id: str, owner: str, fraction: float, message: str | None) -> bool:
        """Record progress of a job ``owner`` runs; False (and nothing changes) if it no longer does."""

    @abc.abstractmethod
    def finish(self, job_id: str, owner: str, *, result: bytes | None = None, error: str | None = None) -> bool:
        """End a running job: ``succeeded`` with ``result``, or ``failed`` with ``error`` (exactly one given).

        Only if the job is still running under ``owner``: otherwise (cancelled meanwhile,
        re-queued because ``owner`` was taken for dead) nothing changes, the result is
        discarded and the answer is False. On success, in the same transaction, a job with a
        callback_url gets a ``Delivery`` due now. Progress becomes 1 on success.
        """

    @abc.abstractmethod
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (status ``cancelled``, finished_at = now; a webhook
        delivery as in ``finish``); a finished job is left as it is. The job after, or None if unknown.

        A queued job will never be claimed; a running one's runner learns it from ``heartbeat``
        (or at once, in-process) and its ``finish`` returns False.
        """

    # -- recovery and retention -------------------------------------------------------
    @abc.abstractmethod
    def requeue_stale(self, stale_before: float, max_attempts: int) -> tuple[int, int]:
        """Running jobs whose heartbeat_at < ``stale_before`` (their server died): back to
        queued (owner cleared, attempts kept), or ``failed`` with the reason when attempts
        >= ``max_attempts``. ``(requeued, failed)``. SQLite at start-up passes +inf: one server
        owns the directory, so every running job there is an orphan.
        """

    @abc.abstractmethod
    def requeue_owned(self, owner: str) -> int:
        """At a drain: ``owner``'s running jobs back to queued with their attempt given back
        (attempts - 1), owner cleared. How many."""

    @abc.abstractmethod
    def purge(self, finished_before: float) -> int:
        """Delete finished jobs with finished_at < ``finished_before``, their payload files or
        blobs and their deliveries. How many jobs."""

    # -- webhooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def claim_deliveries(self, now: float, lease: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` undelivered deliveries with next_attempt_at <= ``now``, oldest due
        first; atomically pushed to next_attempt_at = now + ``lease`` so that no other sender
        (thread or replica) takes them while this one tries."""

    @abc.abstractmethod
    def record_delivery(
        self,
        delivery_id: str,
        *,
        status: int | None,
        error: str | None,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        """The outcome of one POST: attempts + 1, last_status/last_error set; ``delivered``, or
        due again at ``next_attempt_at`` (None: given up, never tried again)."""

    @abc.abstractmethod
    def deliveries(self, job_id: str) -> list[Delivery]:
        """The job's deliveries, oldest first (shown in its status document)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and locks (the store is not used after)."""
