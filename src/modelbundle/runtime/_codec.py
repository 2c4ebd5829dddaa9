"""Request bodies -> API arguments, API results -> response bodies, errors -> JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from ..adapters import FINITE_HINT, JSON, Adapter
from ..errors import BadRequest, InvalidInput, UnsupportedMediaType
from ..service_base import APIMethod

JSON_BYTES = b"application/json"
# Only JSON content types (or none) are parsed as JSON. Browsers send form-urlencoded and
# text/plain cross-origin without a CORS preflight, so parsing those as JSON would let any
# web page call a model on a developer's machine (FastAPI fixed the same hole in 0.65.2).
_JSON_LIKE = frozenset({"", JSON, "text/json"})
_CURL_HINT = " (curl -d sends form data; add -H 'Content-Type: application/json')"
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
#: bodies (and messages) above this are decoded, and their answers encoded, on a thread: parsing
#: megabytes of JSON on the event loop would stall every other request
OFFLOAD_BYTES = 256 * 1024


def request_head(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bytes | None, bytes | None]:
    """(Content-Type, Accept, Content-Length, X-Request-ID) of an ASGI request, in one pass over its headers."""
    content_type = accept = b""
    content_length = request_id = None
    for key, value in headers:
        if key == b"content-type":
            content_type = value
        elif key == b"accept":
            accept = value
        elif key == b"content-length":
            content_length = value
        elif key == b"x-request-id":
            request_id = value
    return content_type, accept, content_length, request_id


async def decode_request_off_loop(api: APIMethod, body: bytes, content_type: str) -> dict[str, Any]:
    """``decode_request``, on a thread when the body is above ``OFFLOAD_BYTES``."""
    if len(body) > OFFLOAD_BYTES:
        return await asyncio.to_thread(decode_request, api, body, content_type)
    return decode_request(api, body, content_type)


def media_type_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_request(api: APIMethod, body: bytes, content_type: str) -> dict[str, Any]:
    """The keyword arguments for ``api`` from a request body."""
    media_type = media_type_of(content_type)
    single = api.single_param
    if media_type in _JSON_LIKE or media_type.endswith("+json"):
        value = _parse_json(api, body)
        if single is None:
            return _decode_fields(api, value)
        if isinstance(value, dict):
            # {"x": ...} names the parameter
            if len(value) == 1 and single.name in value:
                return {single.name: single.adapter.from_json(value[single.name], single.name)}
            # an object cannot be the bare value of a list, array or string: it is the keyed
            # form, so say which of its keys is wrong rather than that it is not a list
            if not single.adapter.json_object:
                return _decode_fields(api, value)
        return {single.name: single.adapter.from_json(value, single.name)}
    if single is not None and media_type in single.adapter.media_types:
        return {single.name: single.adapter.from_body(body, media_type, single.name)}
    hint = _CURL_HINT if media_type == "application/x-www-form-urlencoded" else ""
    raise UnsupportedMediaType(
        f"{api.name} does not accept {media_type} bodies; send {' or '.join(accepted_media_types(api))}{hint}"
    )


def accepted_media_types(api: APIMethod) -> list[str]:
    single = api.single_param
    if single is None:
        return [JSON]
    return [JSON, *(m for m in single.adapter.media_types if m != JSON)]


def _parse_json(api: APIMethod, body: bytes) -> Any:
    if not body:
        single = api.single_param
        if single is None:
            raise BadRequest(f"empty body; {api.name} expects JSON with {_field_list(api)}")
        # the bare value is the natural body (a pydantic model's own fields); the keyed form works too
        raise BadRequest(f"empty body; {api.name} expects JSON: {single.adapter.describe_json()}, bare or as {{\"{single.name}\": ...}}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refuse_non_finite_literal(body, exc)
        raise BadRequest(f"malformed JSON: {exc}") from None


# what Python's json.dumps writes (allow_nan is its default), each followed by what may end a JSON value
_NON_FINITE_LITERALS = ("NaN", "Infinity", "-Infinity")
_VALUE_ENDS = frozenset(" \t\r\n,]}")


def refuse_non_finite_literal(body: bytes, exc: orjson.JSONDecodeError) -> None:
    """InvalidInput when orjson stopped at NaN or Infinity (Python's json.dumps writes them): the
    answer every other encoding gives for them, rather than "malformed JSON"."""
    text = body.decode("utf-8", "replace")  # orjson counts characters, not bytes
    position = exc.pos
    start = position - 1 if position > 0 and text[position - 1 : position] == "-" else position
    for literal in _NON_FINITE_LITERALS:
        end = start + len(literal)
        if text.startswith(literal, start) and (end == len(text) or text[end] in _VALUE_ENDS):
            raise InvalidInput(
                f"{literal} at line {exc.lineno} column {exc.colno - (position - start)} is not accepted; {FINITE_HINT}"
            ) from None


def _decode_fields(api: APIMethod, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"expected a JSON object with {_field_list(api)}")
    names = api.param_names
    unknown = [key for key in value if key not in names]
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; {api.name} takes {_field_list(api)}")
    kwargs = {}
    for param in api.params:
        if param.name in value:
            kwargs[param.name] = param.adapter.from_json(value[param.name], param.name)
        elif param.required:
            raise InvalidInput(f"missing field {param.name!r} ({param.adapter.describe()})")
    return kwargs


def _field_list(api: APIMethod) -> str:
    return ("field " if len(api.params) == 1 else "fields ") + ", ".join(f"'{p.name}'" for p in api.params)


def encode_result(adapter: Adapter, value: Any, accept: str) -> tuple[bytes, bytes]:
    """The response body and its media type for an API's return value."""
    media_type = adapter.response_media_type(accept)
    if media_type == JSON:
        return orjson.dumps(adapter.to_json(value), option=_ORJSON_OPTIONS), JSON_BYTES
    return adapter.to_body(value, media_type), media_type.encode("latin-1")


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return orjson.dumps({"error": {"type": error_type, "message": message, "request_id": request_id}})


def method_not_allowed(method: str, path: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """A 405's message naming the allowed methods, and its headers with Allow in a stable order
    (Starlette joins a set, whose order changes from one process to the next)."""
    headers = dict(headers or {})
    allowed = headers.get("Allow")
    if not allowed:
        return f"{method} is not allowed on {path}", headers
    headers["Allow"] = ", ".join(sorted(m.strip() for m in allowed.split(",")))
    return f"{method} is not allowed on {path}; it takes {headers['Allow']}", headers
