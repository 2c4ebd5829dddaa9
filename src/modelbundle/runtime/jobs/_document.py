"""A job's status document: what ``GET .../jobs/<id>`` answers and the webhook POSTs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ._store import Delivery, Job


def status_document(job: Job, deliveries: list[Delivery] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": job.id,
        "api": job.api,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "attempts": job.attempts,
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
        "error": job.error,
    }
    if job.callback_url is not None:
        document["callback_url"] = job.callback_url
        document["deliveries"] = [delivery_document(d) for d in deliveries or []]
    return document


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    return {
        "url": delivery.url,
        "attempts": delivery.attempts,
        "delivered": delivery.delivered,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": iso_time(delivery.next_attempt_at) if not delivery.delivered else None,
    }


def iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
