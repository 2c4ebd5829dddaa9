"""Durable jobs: every API can be submitted as a job, polled, cancelled and its result fetched
later; the queue survives restarts (SQLite by default, PostgreSQL for several replicas)."""

from __future__ import annotations

from ._store import DEFAULT_INLINE_LIMIT, FINISHED, Delivery, Job, JobStatus, JobStore, NewJob, new_job_id

__all__ = ["DEFAULT_INLINE_LIMIT", "FINISHED", "Delivery", "Job", "JobStatus", "JobStore", "NewJob", "new_job_id"]
