"""The job routes of one API: submit, list, status, result, cancel.

``POST <route>/jobs`` takes exactly what ``POST <route>`` takes and decodes it at once with the
API's own decoder, so a body the API would refuse is refused here with the same 4xx and never
queued. ``GET .../result`` answers as the API would have (``_result.py``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...errors import BadRequest, JobNotFinished, ModelError, NotFound
from ...service_base import APIMethod
from .._body import BodyLimits, read_body
from .._codec import decode_request_off_loop
from .._config import ServeConfig
from .._spans import current_traceparent
from ._document import iso_time, status_document
from ._result import unpack_result
from ._service import JobsService
from ._store import Job, JobStatus, JobStore, NewJob

MAX_IDEMPOTENCY_KEY = 255
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100


def jobs_prefix(api: APIMethod) -> str:
    return api.route.rstrip("/") + "/jobs"


def job_routes(api: APIMethod, jobs: JobsService, config: ServeConfig) -> list[BaseRoute]:
    prefix = jobs_prefix(api)
    limits = BodyLimits(config.max_body_size, config.body_timeout, config.body_min_rate)

    async def submit(request: Request) -> Response:
        store, runner = jobs.require()
        content_type = request.headers.get("content-type", "")
        body = await read_body(request.receive, _content_length(request), limits)
        await decode_request_off_loop(api, body, content_type)  # refused here with the API's 4xx, never queued
        new = NewJob(
            api=api.name,
            body=body,
            content_type=content_type,
            idempotency_key=_idempotency_key(request),
            callback_url=_callback_url(request),
            traceparent=current_traceparent(),
        )
        job, created = await asyncio.to_thread(store.submit, new)
        if created:
            runner.wake()
        headers = {"Location": f"{prefix}/{job.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        document = {"id": job.id, "status": job.status.value, "created_at": iso_time(job.created_at)}
        return JSONResponse(document, status_code=202, headers=headers)

    async def listing(request: Request) -> Response:
        store, _ = jobs.require()
        status = _status_filter(request.query_params.get("status"))
        limit = _limit(request.query_params.get("limit"))
        found = await asyncio.to_thread(store.list_jobs, api.name, status, limit)
        return JSONResponse({"jobs": [status_document(job) for job in found]})

    async def status(request: Request) -> Response:
        store, _ = jobs.require()
        job = await _job(store, api, request)
        deliveries = await asyncio.to_thread(store.deliveries, job.id) if job.callback_url else None
        return JSONResponse(status_document(job, deliveries))

    async def result(request: Request) -> Response:
        store, _ = jobs.require()
        job = await _job(store, api, request)
        if job.status is not JobStatus.SUCCEEDED:
            raise JobNotFinished(f"job {job.id} is {job.status.value}; its result is there once it has succeeded")
        packed = await asyncio.to_thread(store.read_result, job.id)
        if packed is None:  # purged between the two reads
            raise NotFound(f"no job {job.id} of {api.name}")
        media_type = api.output.response_media_type(request.headers.get("accept", ""))
        encodings = unpack_result(packed)
        if media_type not in encodings:
            raise ModelError(f"the result of job {job.id} could not be encoded as {media_type} when it finished")
        # the header as given: Starlette would add a charset to text/* that the API's own route does not send
        return Response(encodings[media_type], headers={"content-type": media_type})

    async def cancel(request: Request) -> Response:
        store, runner = jobs.require()
        job = await _job(store, api, request)
        after = await asyncio.to_thread(store.cancel, job.id)
        if after is None:
            raise NotFound(f"no job {job.id} of {api.name}")
        if after.status is JobStatus.CANCELLED and job.status is JobStatus.RUNNING:
            runner.cancel_local(job.id)  # an async API stops now; a sync one's thread runs on, its result discarded
        if after.status is JobStatus.CANCELLED and not job.status.finished:
            runner.on_finished(job.id)
        return JSONResponse(status_document(after))

    return [
        Route(prefix, submit, methods=["POST"]),
        Route(prefix, listing, methods=["GET"]),
        Route(prefix + "/{job_id}", status, methods=["GET"]),
        Route(prefix + "/{job_id}", cancel, methods=["DELETE"]),
        Route(prefix + "/{job_id}/result", result, methods=["GET"]),
    ]


async def _job(store: JobStore, api: APIMethod, request: Request) -> Job:
    job_id = request.path_params["job_id"]
    job = await asyncio.to_thread(store.get, job_id)
    if job is None or job.api != api.name:
        raise NotFound(f"no job {job_id} of {api.name} (finished jobs are purged after --job-ttl)")
    return job


def _content_length(request: Request) -> bytes | None:
    value = request.headers.get("content-length")
    return value.encode("latin-1") if value is not None else None


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key


def _callback_url(request: Request) -> str | None:
    url = request.query_params.get("callback_url") or request.headers.get("x-callback-url")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"callback_url must be an http:// or https:// URL, not {url!r}")
    return url


def _status_filter(value: str | None) -> JobStatus | None:
    if value is None or value == "":
        return None
    try:
        return JobStatus(value)
    except ValueError:
        raise BadRequest(f"status must be one of {', '.join(s.value for s in JobStatus)}, not {value!r}") from None


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIST_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIST_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}, not {value!r}")
    return int(value)


__all__ = ["job_routes", "jobs_prefix"]
