"""Durable jobs: every API can be submitted as a job, polled, cancelled and its result fetched
later; the queue survives restarts (SQLite by default, PostgreSQL for several replicas).

``JobsService`` is what the app's lifespan starts and stops; ``job_routes`` and
``add_job_paths`` are the HTTP surface and its OpenAPI; ``JobStore`` is the storage contract.
"""

from __future__ import annotations

from ..._job_context import JobContext, current_job
from ._document import status_document
from ._openapi import add_job_paths
from ._routes import job_routes
from ._service import JobsService, job_apis, prepare_jobs_for_workers
from ._sqlite import SQLiteJobStore
from ._store import (
    DEFAULT_INLINE_LIMIT,
    FINISHED,
    Delivery,
    Job,
    JobStatus,
    JobStore,
    NewJob,
    new_job_id,
)

__all__ = [
    "DEFAULT_INLINE_LIMIT",
    "FINISHED",
    "Delivery",
    "Job",
    "JobContext",
    "JobStatus",
    "JobStore",
    "JobsService",
    "NewJob",
    "SQLiteJobStore",
    "add_job_paths",
    "current_job",
    "job_apis",
    "job_routes",
    "new_job_id",
    "prepare_jobs_for_workers",
    "status_document",
]
