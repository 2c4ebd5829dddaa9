"""A dependency call on the wire: Python arguments -> JSON body, JSON answer -> Python value.

Both ends use the dependency's own adapters (its ``APIMethod``), so an argument crosses
as it would in one process: an array comes back an array of the same dtype.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import InvalidDependencyCall
from ...service_base import APIMethod

_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode_call(service: str, api: APIMethod, kwargs: dict[str, Any]) -> bytes:
    """The JSON request body for ``api(**kwargs)``; unknown or missing arguments fail here, before any I/O."""
    unknown = sorted(set(kwargs) - api.param_names)
    if unknown:
        raise InvalidDependencyCall(service, f"{service}.{api.name}() got an unknown argument {unknown[0]!r}; it takes {_params(api)}")
    missing = [p.name for p in api.params if p.required and p.name not in kwargs]
    if missing:
        raise InvalidDependencyCall(service, f"{service}.{api.name}() is missing the argument {missing[0]!r}; it takes {_params(api)}")
    fields = {p.name: p.adapter.to_json(kwargs[p.name]) for p in api.params if p.name in kwargs}
    return orjson.dumps(fields, option=_ORJSON_OPTIONS)


def decode_result(api: APIMethod, body: bytes) -> Any:
    """The Python value of a JSON answer (or of one streamed NDJSON line), as ``api`` returns it."""
    return api.output.from_json(orjson.loads(body), "result")


def _params(api: APIMethod) -> str:
    return ", ".join(p.name for p in api.params) or "no arguments"
