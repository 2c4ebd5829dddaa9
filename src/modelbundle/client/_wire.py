"""One API call on the wire, from the caller's side: the inverse of ``runtime/_codec.py``.

``encode_request`` turns keyword arguments into the body the server's ``decode_request`` reads
back into the same values, with the same adapters; ``decode_response`` turns the server's answer
into the API's return value, or raises the exception of the error tree (``modelbundle.errors``)
that the server raised, rebuilt from its error body. No HTTP library here: the client, and
services that call other services, bring their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..adapters import JSON, Adapter
from ..errors import RequestError

#: sent as Accept: every adapter answers JSON when asked, so one decoder serves every API
ACCEPT = JSON
#: the field name adapters put in their messages when a response does not decode
RESULT_FIELD = "result"
#: response headers an error carries on (the rest describe the HTTP message, not the error)
_ERROR_HEADERS = ("retry-after", "www-authenticate", "allow")
_JSON_LIKE = frozenset({"", JSON, "text/json"})


def encode_request(inputs: Mapping[str, Adapter], arguments: Mapping[str, Any]) -> tuple[bytes, str]:
    """(body, Content-Type) of a call with ``arguments`` to an API whose parameters are ``inputs``.

    Always the keyed JSON form, ``{"name": value, ...}``: the server takes it for every API, a
    one-parameter API included (it reads a bare body only when the object is not keyed by the
    parameter's name), so a pydantic model whose field is called like the parameter is never
    mistaken. A parameter left out is left to its default on the server.
    """
    unknown = [name for name in arguments if name not in inputs]
    if unknown:
        raise TypeError(f"unexpected argument {unknown[0]!r}; the API takes {', '.join(inputs) or 'no arguments'}")
    payload = {name: _to_json(inputs[name], value, name) for name, value in arguments.items()}
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), JSON


def _to_json(adapter: Adapter, value: Any, field: str) -> Any:
    try:
        encoded = adapter.to_json(value)
    except Exception:
        # a dict that does not fit its pydantic model: the server's own message for it, raised
        # here as the server would (InvalidInput), before sending anything
        adapter.from_json(value, field)
        raise
    if type(encoded).__module__ == "numpy":
        # orjson writes NaN and infinity as null, which the server would call a wrong type: say
        # what the server says of them in every other encoding, before sending anything
        from ..adapters import finite_cast

        finite_cast(encoded, None, field)
    return encoded


def media_type_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_response(
    status: int, content_type: str, body: bytes, output: Adapter, headers: Mapping[str, str] | None = None
) -> Any:
    """The API's return value from a 2xx answer; the error tree's exception from any other."""
    if not 200 <= status < 300:
        raise error_from_response(status, content_type, body, headers)
    return decode_value(content_type, body, output)


def decode_value(content_type: str, body: bytes, output: Adapter) -> Any:
    """One value encoded by ``output`` (a whole response, or one item of a stream)."""
    media_type = media_type_of(content_type)
    if media_type in _JSON_LIKE or media_type.endswith("+json"):
        return output.from_json(orjson.loads(body), RESULT_FIELD)
    if media_type in output.media_types:
        return output.from_body(body, media_type, RESULT_FIELD)
    raise RequestError(f"the server answered {media_type}, which {output.describe()} cannot be read from")


def error_from_response(
    status: int, content_type: str, body: bytes, headers: Mapping[str, str] | None = None
) -> RequestError:
    """The exception the server raised, from its status and ``{"error": {"type", "message", "request_id"}}`` body.

    The class is found by the error's type, then by the status; an error the tree does not know
    (a proxy's 502, a 426) is a plain ``RequestError`` carrying that status and type.
    """
    error_type, message, request_id = _error_fields(status, content_type, body)
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in _ERROR_HEADERS}
    return build_error(error_type, message, status, request_id, kept)


def build_error(
    error_type: str, message: str, status: int | None = None, request_id: str = "", headers: dict[str, str] | None = None
) -> RequestError:
    """The tree's exception for an error ``type`` (else for ``status``); None: the class's own status.

    Also for the errors that arrive without a status: a stream's last line, a failed job's error.
    """
    cls = _BY_TYPE.get(error_type) or (_BY_STATUS.get(status) if status is not None else None)
    error = (cls or RequestError)(message, headers=headers)
    if status is not None and (cls is None or cls.status_code != status):
        error.status_code = status
    if cls is None or cls.error_type != error_type:
        error.error_type = error_type
    error.request_id = request_id  # type: ignore[attr-defined]
    return error


def _error_fields(status: int, content_type: str, body: bytes) -> tuple[str, str, str]:
    """(type, message, request id) of an error body; made up from the status when it is not ours."""
    if media_type_of(content_type) in _JSON_LIKE:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error.get("type") or "http_error"), error["message"], str(error.get("request_id") or "")
    text = body.decode("utf-8", "replace").strip()
    snippet = f": {text[:200]}" if text else ""
    return "http_error", f"HTTP {status}{snippet}", ""


def _request_errors() -> list[type[RequestError]]:
    found: list[type[RequestError]] = []
    pending = list(RequestError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# the tree's own classes only: a subclass user code defines elsewhere must not change the mapping
_TREE = [cls for cls in _request_errors() if cls.__module__ == RequestError.__module__]
_BY_TYPE = {cls.error_type: cls for cls in _TREE}
_BY_STATUS = {cls.status_code: cls for cls in _TREE}
#: the ``type`` of every error the tree knows
ERROR_TYPES = frozenset(_BY_TYPE)
