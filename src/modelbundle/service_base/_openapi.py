"""The OpenAPI 3.1 document of a service: real input and output schemas for every API."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..adapters import JSON, adapter_hint
from ._method import APIMethod
from ._service import Service

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "request_id"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}
_ERROR_RESPONSES = {
    "400": "The body cannot be decoded.",
    "413": "The body is above the server's size limit.",
    "415": "The API does not accept this Content-Type.",
    "422": "A field is missing or of the wrong type or shape.",
    "500": "The model raised.",
    "503": "Overloaded or not ready; retry after the Retry-After header's seconds.",
    "504": "The request ran past the server's timeout.",
}
_BINARY = {"type": "string", "format": "binary"}
#: a Service class attribute: API name -> an example JSON body shown in the OpenAPI document
API_EXAMPLES_ATTR = "__api_examples__"
_SSE = "text/event-stream"
_NDJSON = "application/x-ndjson"
_STREAM_DESCRIPTION = (
    "A stream, one item at a time as the API yields it. With `Accept: text/event-stream`: Server-Sent Events, "
    "one `data:` event per item (a string as is, anything else as compact JSON), then `event: end` with "
    '`{"items": N}`, or `event: error` with the error JSON if the API fails mid-stream. Otherwise NDJSON: '
    'one JSON item per line; a failure mid-stream ends it with a line `{"error": {...}}`. '
    "The schema below is that of one item."
)


def build_openapi(service: type[Service], version: str | None = None) -> dict[str, Any]:
    defs: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for api in service.__apis__.values():
        paths[api.route] = {"get": _websocket_operation(api, defs)} if api.websocket else {"post": _operation(api, defs)}
        example = getattr(service, API_EXAMPLES_ATTR, {}).get(api.name)
        if example is not None and not api.websocket:  # a body to try in /docs (an MLflow model's input example)
            paths[api.route]["post"]["requestBody"]["content"][JSON]["example"] = example
    paths.update(_health_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": service.name,
            "version": version or "dev",
            "description": (service.__doc__ or "").strip() or f"{service.name}, served by modelbundle {__version__}.",
        },
        "paths": paths,
        "components": {"schemas": defs},
    }


def _operation(api: APIMethod, defs: dict[str, Any]) -> dict[str, Any]:
    fields = {p.name: p.adapter.json_schema(defs) for p in api.params}
    if api.batchable and api.output.empty(api.batch_dim) is None:
        # no rows get a 422 when the output has no empty value (runtime/_empty_batch.py): say so
        for param in api.params:
            _require_rows(fields[param.name], api.batch_dim)
    body_schema: dict[str, Any] = {
        "type": "object",
        "properties": fields,
        "required": [p.name for p in api.params if p.required],
        "additionalProperties": False,
    }
    content: dict[str, Any] = {}
    single = api.single_param
    if single is not None:
        # a one-parameter API also takes the bare value
        content[JSON] = {"schema": {"anyOf": [body_schema, fields[single.name]]}}
        for media_type in single.adapter.media_types:
            if media_type != JSON:
                content[media_type] = {"schema": single.adapter.body_schema(media_type)}
    else:
        content[JSON] = {"schema": body_schema}

    output_content: dict[str, Any] = {}
    if api.streaming:
        item = api.output.json_schema(defs)
        output_content[_SSE] = {"schema": item}
        output_content[_NDJSON] = {"schema": item}
    for media_type in () if api.streaming else api.output.media_types:
        if media_type == JSON:
            output_content[JSON] = {"schema": api.output.json_schema(defs)}
        else:
            output_content[media_type] = {"schema": _BINARY if media_type != "text/plain" else {"type": "string"}}

    description = api.doc
    if api.batchable:
        description += (
            f"\n\nBatchable: concurrent requests are merged along dimension {api.batch_dim}, "
            f"up to {api.max_batch_size} rows; requests that cannot be answered within "
            f"{api.max_latency_ms:g} ms get a 503."
        )
    result = _STREAM_DESCRIPTION if api.streaming else "The API's result."
    responses: dict[str, Any] = {"200": {"description": result, "content": output_content}}
    for status, text in _ERROR_RESPONSES.items():
        responses[status] = {
            "description": text,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return {
        "operationId": api.name,
        "summary": (api.doc.splitlines() or [api.name])[0],
        "description": description.strip(),
        "requestBody": {"required": True, "content": content},
        "responses": responses,
        # what a client needs to call it with the same adapters (modelbundle.Client)
        "x-modelbundle": _wire_hint(api),
    }


def _wire_hint(api: APIMethod) -> dict[str, Any]:
    params = [{"name": p.name, "required": p.required, "adapter": adapter_hint(p.adapter)} for p in api.params]
    return {"params": params, "output": adapter_hint(api.output), "streaming": api.streaming}


def _websocket_operation(api: APIMethod, defs: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI has no WebSockets: the upgrade GET, with the schema of each message under x-websocket."""
    (param,) = api.params
    return {
        "operationId": api.name,
        "summary": (api.doc.splitlines() or [api.name])[0],
        "description": (
            f"{api.doc}\n\nA WebSocket: open it with a GET (Upgrade: websocket) to {api.route}. Each message sent is "
            "one input item, each message received one output item (their schemas: x-websocket)."
        ).strip(),
        "x-websocket": {"receives": param.adapter.json_schema(defs), "sends": api.output.json_schema(defs)},
        "responses": {"101": {"description": "Switching to the WebSocket protocol."}},
    }


def _require_rows(schema: dict[str, Any], dim: int) -> None:
    """At least one item in the array ``dim`` levels down ``schema`` (if the schema says that deep)."""
    for _ in range(dim):
        if "items" not in schema:
            return
        schema = schema["items"]
    if schema.get("type") == "array":
        schema["minItems"] = max(schema.get("minItems", 0), 1)


def _health_paths() -> dict[str, Any]:
    def get(summary: str, media_type: str = JSON, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        responses = {"200": {"description": summary, "content": {media_type: {"schema": {"type": "string"} if media_type != JSON else {"type": "object"}}}}}
        responses.update(extra or {})
        return {"get": {"summary": summary, "operationId": summary.split()[0].lower(), "responses": responses, "tags": ["infrastructure"]}}

    not_ready = {"503": {"description": "Not ready: starting, waiting for workers, or draining."}}
    return {
        "/livez": get("Liveness: the process is up."),
        "/readyz": get("Readiness: setup() has finished in every worker.", extra=not_ready),
        "/metrics": get("Metrics in the Prometheus text format.", media_type="text/plain"),
    }
