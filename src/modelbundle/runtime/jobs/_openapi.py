"""The job routes in the served OpenAPI document (added to the one built from the Service)."""

from __future__ import annotations

from typing import Any

from ...adapters import JSON
from ...service_base import APIMethod
from ._routes import jobs_prefix
from ._store import JobStatus

_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATUS_SCHEMA = {
    "type": "object",
    "required": ["id", "status", "progress", "attempts", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "api": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in JobStatus]},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": ["string", "null"]},
        "attempts": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": _TIME,
        "finished_at": _TIME,
        "error": {"type": ["string", "null"]},
        "callback_url": {"type": "string"},
        "deliveries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "attempts": {"type": "integer"},
                    "delivered": {"type": "boolean"},
                    "last_status": {"type": ["integer", "null"]},
                    "last_error": {"type": ["string", "null"]},
                    "next_attempt_at": _TIME,
                },
            },
        },
    },
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "required": ["id", "status", "created_at"],
    "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}},
}


def add_job_paths(document: dict[str, Any], apis: list[APIMethod]) -> None:
    """Add ``<route>/jobs...`` for ``apis`` to ``document`` (built by ``build_openapi``), in place."""
    if not apis:  # nothing can run as a job (every API streams): the document stays as it was
        return
    schemas = document["components"]["schemas"]
    schemas["JobStatus"] = _STATUS_SCHEMA
    schemas["JobAccepted"] = _ACCEPTED_SCHEMA
    for api in apis:
        operation = document["paths"][api.route]["post"]
        prefix = jobs_prefix(api)
        tags = ["jobs"]
        document["paths"][prefix] = {
            "post": {
                "operationId": f"{api.name}_submit_job",
                "summary": f"Run {api.name} as a durable job",
                "description": "Takes exactly the body the API takes; refused with the API's 4xx at once, never queued.",
                "tags": tags,
                "parameters": [
                    _header("Idempotency-Key", "The same key returns the same job."),
                    _header("X-Callback-URL", "POSTed the job's status document when it finishes (or use ?callback_url=)."),
                    _query("callback_url", {"type": "string", "format": "uri"}),
                ],
                "requestBody": operation["requestBody"],
                "responses": {
                    "202": {"description": "Queued.", "content": _json("JobAccepted"),
                            "headers": {"Location": {"schema": {"type": "string"}}}},
                    **_errors("400", "413", "415", "422", "503"),
                },
            },
            "get": {
                "operationId": f"{api.name}_list_jobs",
                "summary": f"Jobs of {api.name}, newest first",
                "tags": tags,
                "parameters": [
                    _query("status", {"type": "string", "enum": [s.value for s in JobStatus]}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                "responses": {
                    "200": {"description": "The jobs.", "content": {JSON: {"schema": {
                        "type": "object", "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobStatus"}}},
                    }}}},
                    **_errors("400"),
                },
            },
        }
        job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
        document["paths"][prefix + "/{job_id}"] = {
            "parameters": [job_id],
            "get": {"operationId": f"{api.name}_job_status", "summary": "A job's status", "tags": tags,
                    "responses": {"200": {"description": "Its status.", "content": _json("JobStatus")}, **_errors("404")}},
            "delete": {"operationId": f"{api.name}_cancel_job", "summary": "Cancel a job", "tags": tags,
                       "responses": {"200": {"description": "Its status after.", "content": _json("JobStatus")}, **_errors("404")}},
        }
        document["paths"][prefix + "/{job_id}/result"] = {
            "parameters": [job_id],
            "get": {
                "operationId": f"{api.name}_job_result",
                "summary": "A succeeded job's result, as the API answers",
                "tags": tags,
                "responses": {"200": operation["responses"]["200"], **_errors("404", "409")},
            },
        }


def _json(schema: str) -> dict[str, Any]:
    return {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _errors(*statuses: str) -> dict[str, Any]:
    texts = {"400": "Bad request.", "404": "No such job.", "409": "The job has not succeeded (yet).",
             "413": "Too large.", "415": "Unsupported Content-Type.", "422": "Invalid input.", "503": "Jobs unavailable."}
    return {status: {"description": texts[status], "content": _json("Error")} for status in statuses}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}
