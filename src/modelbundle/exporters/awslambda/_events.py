"""Lambda events <-> HTTP requests and responses: API Gateway REST (v1), HTTP API (v2), Function URLs, direct calls.

Pure translation, no I/O: ``parse_event`` turns an event into an ``HTTPRequest``
(and says which format to answer in); ``format_response`` turns the runtime's
``HTTPResponse`` back into what that caller expects.

- v1 (REST APIs, and HTTP APIs with payload format 1.0): ``httpMethod``, ``path``,
  ``multiValueHeaders``/``headers``, ``multiValueQueryStringParameters``; answered
  with ``statusCode``, ``headers``, ``multiValueHeaders``, ``body``, ``isBase64Encoded``.
- v2 (HTTP APIs, payload format 2.0, and Function URLs): ``rawPath``, ``rawQueryString``,
  comma-joined ``headers``, ``cookies``; answered likewise, with ``set-cookie`` values in ``cookies``.
- direct (``aws lambda invoke``, Step Functions): ``{"api": NAME, "input": VALUE}`` is a JSON
  POST to that API; the answer is the decoded result, and an error is raised as the
  runtime's error class (``InvalidInput``, ``ModelError``...), which Lambda reports as ``errorType``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlencode

from ...errors import (
    BadRequest,
    InvalidInput,
    MethodNotAllowed,
    ModelError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
    UnsupportedMediaType,
)

EventFormat = Literal["v1", "v2", "direct"]
Headers = list[tuple[bytes, bytes]]

#: bodies of these types travel as text; anything else is base64 (API Gateway's binary support)
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/problem+json")
_ERRORS: dict[str, type[RequestError]] = {
    cls.error_type: cls
    for cls in (
        BadRequest, InvalidInput, NotFound, MethodNotAllowed, PayloadTooLarge,
        UnsupportedMediaType, Overloaded, RequestTimeout, ModelError,
    )
}


@dataclass(frozen=True)
class HTTPRequest:
    """An HTTP request as the ASGI app sees it."""

    method: str
    path: str
    query_string: bytes = b""
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    client: str | None = None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def scope(self) -> dict[str, Any]:
        host = (self.header(b"host") or b"lambda").decode("latin-1")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "https",
            "path": self.path,
            "raw_path": quote(self.path).encode("ascii"),
            "root_path": "",
            "query_string": self.query_string,
            "headers": list(self.headers),
            "client": (self.client, 0) if self.client else None,
            "server": (host.rsplit(":", 1)[0], 443),
            "state": {},
        }


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    headers: Headers
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def event_format(event: Any) -> EventFormat:
    """Which kind of event this is; BadRequest for anything else."""
    if isinstance(event, Mapping):
        if event.get("version") == "2.0" and "rawPath" in event and isinstance(event.get("requestContext"), Mapping):
            return "v2"
        if "httpMethod" in event and "path" in event:
            return "v1"
        if isinstance(event.get("api"), str) and "input" in event:
            return "direct"
    keys = sorted(event)[:8] if isinstance(event, Mapping) else type(event).__name__
    raise BadRequest(
        "unsupported event: expected an API Gateway (REST or HTTP API) or Function URL event, "
        f'or {{"api": NAME, "input": VALUE}}; got {keys}'
    )


def parse_event(event: Any, routes: Mapping[str, str]) -> tuple[EventFormat, HTTPRequest]:
    """The request an event stands for; ``routes`` maps API names to routes (for direct calls)."""
    kind = event_format(event)
    if kind == "v2":
        return kind, _from_v2(event)
    if kind == "v1":
        return kind, _from_v1(event)
    return kind, _from_direct(event, routes)


def format_response(kind: EventFormat, response: HTTPResponse) -> Any:
    if kind == "v2":
        return _to_v2(response)
    if kind == "v1":
        return _to_v1(response)
    return _to_direct(response)


# -- requests ---------------------------------------------------------------------------
def _from_v1(event: Mapping[str, Any]) -> HTTPRequest:
    headers: Headers = []
    multi = event.get("multiValueHeaders") or {}
    single = event.get("headers") or {}
    for name in sorted(n for n in set(multi) | set(single) if n):
        values = multi.get(name) or ([single[name]] if single.get(name) is not None else [])
        headers.extend((_lower(name), _bytes(value)) for value in values if value is not None)
    params = event.get("multiValueQueryStringParameters") or {
        k: [v] for k, v in (event.get("queryStringParameters") or {}).items()
    }
    query = urlencode([(k, v) for k, values in params.items() for v in (values or [])])
    context = event.get("requestContext") or {}
    path = event.get("path") or "/"
    if event.get("version") == "1.0":  # an HTTP API's stage prefix (REST APIs leave it out of "path")
        path = _strip_stage(path, context.get("stage"))
    return HTTPRequest(
        method=str(event["httpMethod"]).upper(),
        path=path,
        query_string=query.encode("ascii"),
        headers=headers,
        body=_body(event),
        client=(context.get("identity") or {}).get("sourceIp"),
    )


def _from_v2(event: Mapping[str, Any]) -> HTTPRequest:
    context = event["requestContext"]
    http = context.get("http") or {}
    headers: Headers = [(_lower(k), _bytes(v)) for k, v in sorted((event.get("headers") or {}).items()) if v is not None]
    cookies = event.get("cookies")
    if cookies:
        headers.append((b"cookie", _bytes("; ".join(cookies))))
    path = _strip_stage(unquote(event.get("rawPath") or "/"), context.get("stage"))
    return HTTPRequest(
        method=str(http.get("method", "GET")).upper(),
        path=path,
        query_string=(event.get("rawQueryString") or "").encode("utf-8"),
        headers=headers,
        body=_body(event),
        client=http.get("sourceIp"),
    )


def _from_direct(event: Mapping[str, Any], routes: Mapping[str, str]) -> HTTPRequest:
    name = event["api"]
    route = routes.get(name)
    if route is None:
        raise NotFound(f"no API named {name!r}; the APIs are {', '.join(sorted(routes)) or 'none'}")
    try:
        body = json.dumps(event["input"], separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the input of {name} cannot be sent as JSON: {exc}") from None
    return HTTPRequest(
        method="POST", path=route, headers=[(b"content-type", b"application/json"), (b"accept", b"application/json")], body=body
    )


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the event's body is marked isBase64Encoded but is not valid base64") from None
    return str(body).encode("utf-8")


def _strip_stage(path: str, stage: Any) -> str:
    if isinstance(stage, str) and stage and stage != "$default":
        prefix = f"/{stage}"
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return path


def _lower(name: str) -> bytes:
    return _bytes(name).lower()


def _bytes(value: Any) -> bytes:
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


# -- responses --------------------------------------------------------------------------
def _payload(response: HTTPResponse) -> tuple[str, bool]:
    """(body, isBase64Encoded): text for textual types, base64 for the rest."""
    content_type = (response.header(b"content-type") or b"").decode("latin-1").lower()
    if content_type.startswith(_TEXT_TYPES) or content_type.split(";")[0].endswith("+json"):
        try:
            return response.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(response.body).decode("ascii"), True


def _grouped(response: HTTPResponse) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in response.headers:
        name = key.decode("latin-1").lower()
        if name != "content-length":  # the gateway sets its own
            grouped.setdefault(name, []).append(value.decode("latin-1"))
    return grouped


def _to_v1(response: HTTPResponse) -> dict[str, Any]:
    body, encoded = _payload(response)
    grouped = _grouped(response)
    return {
        "statusCode": response.status,
        "headers": {name: values[-1] for name, values in grouped.items()},
        "multiValueHeaders": grouped,
        "body": body,
        "isBase64Encoded": encoded,
    }


def _to_v2(response: HTTPResponse) -> dict[str, Any]:
    body, encoded = _payload(response)
    grouped = _grouped(response)
    cookies = grouped.pop("set-cookie", [])
    answer: dict[str, Any] = {
        "statusCode": response.status,
        "headers": {name: ",".join(values) for name, values in grouped.items()},
        "body": body,
        "isBase64Encoded": encoded,
    }
    if cookies:
        answer["cookies"] = cookies
    return answer


def _to_direct(response: HTTPResponse) -> Any:
    if response.status >= 400:
        raise error_from_response(response)
    content_type = (response.header(b"content-type") or b"").decode("latin-1").lower()
    if content_type.startswith("application/json") or content_type.split(";")[0].endswith("+json"):
        return json.loads(response.body)
    body, encoded = _payload(response)
    if not encoded:
        return body
    return {"contentType": content_type, "body": body, "isBase64Encoded": True}


def error_from_response(response: HTTPResponse) -> RequestError:
    """The runtime's JSON error body as the RequestError it came from (its class name is Lambda's errorType)."""
    try:
        error = json.loads(response.body)["error"]
        kind, message = str(error["type"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "", response.body.decode("utf-8", "replace")[:500]
    cls = _ERRORS.get(kind)
    if cls is not None and cls.status_code == response.status:
        return cls(message)
    exc = RequestError(message)
    exc.status_code = response.status
    return exc
