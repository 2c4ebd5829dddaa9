"""Self-contained JSON schemas of an API's inputs and output, for ``bundle.json``.

The adapters write schemas for the OpenAPI document, where shared definitions
live under ``#/components/schemas``. ``bundle.json`` has no such section, so each
schema stored there carries the definitions it uses under its own ``$defs``, and
its references point there: every schema can be checked on its own.
"""

from __future__ import annotations

from typing import Any

from ..service_base import APIMethod

_OPENAPI_PREFIX = "#/components/schemas/"
_DEFS_PREFIX = "#/$defs/"


def api_schemas(api: APIMethod) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(input_schema, output_schema)``: each a standalone JSON schema."""
    defs: dict[str, Any] = {}
    inputs = {p.name: p.adapter.json_schema(defs) for p in api.params}
    output = api.output.json_schema(defs)
    return _standalone({"properties": inputs}, defs), _standalone(output, defs)


def _standalone(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = _local_refs(schema)
    used = _used_defs(body, defs)
    if used:
        body["$defs"] = {name: _local_refs(defs[name]) for name in sorted(used)}
    return body


def _local_refs(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (_DEFS_PREFIX + item[len(_OPENAPI_PREFIX):] if key == "$ref" and isinstance(item, str) and item.startswith(_OPENAPI_PREFIX) else _local_refs(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_local_refs(item) for item in value]
    return value


def _used_defs(schema: Any, defs: dict[str, Any]) -> set[str]:
    """The definitions ``schema`` refers to, and those they refer to, in turn."""
    used: set[str] = set()
    pending = [schema]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
                name = ref[len(_DEFS_PREFIX):]
                if name not in used and name in defs:
                    used.add(name)
                    pending.append(_local_refs(defs[name]))
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return used
