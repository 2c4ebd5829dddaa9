"""Offline schema checks: Kubernetes objects against kubernetes-validate's strict schemas, the
InferenceService against ``schemas/inferenceservice-serving-v1beta1.json`` (made from the kserve SDK's models
by ``scripts/kserve_schema.py``), whose Kubernetes parts refer to the same strict definitions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ...errors import ExportError

#: the oldest Kubernetes minor version the manifests are meant for (autoscaling/v2, policy/v1, an exec
#: preStop rather than the newer sleep action); checks run against it and the newest the package ships
KUBERNETES_VERSION = "1.29"
KSERVE_SCHEMA = Path(__file__).parent / "schemas" / "inferenceservice-serving-v1beta1.json"
_MISSING = "the schema check needs kubernetes-validate: pip install 'modelbundle[kubernetes]'"


def validation_available() -> bool:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        return False
    return True


def kubernetes_versions() -> list[str]:
    """The versions every manifest is checked against: ``KUBERNETES_VERSION`` and the newest shipped."""
    try:
        import kubernetes_validate.utils as kv
    except ImportError:
        raise ExportError(_MISSING) from None
    return sorted({KUBERNETES_VERSION, kv.major_minor(kv.latest_version())}, key=lambda v: tuple(map(int, v.split("."))))


def validate_manifest(obj: Mapping[str, Any], version: str = KUBERNETES_VERSION) -> None:
    """Check one object in strict mode (unknown fields are errors); ``ExportError`` naming the field if it fails."""
    try:
        import jsonschema
        import kubernetes_validate.utils as kv
    except ImportError:
        raise ExportError(_MISSING) from None
    what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        if obj.get("kind") == "InferenceService":
            _kserve_validator(version).validate(dict(obj))
        else:
            kv.validate(dict(obj), version, strict=True)
    except jsonschema.ValidationError as exc:
        path = ".".join(str(part) for part in exc.absolute_path) or "(top level)"
        raise ExportError(f"{what} does not validate against Kubernetes {version}: {path}: {exc.message}") from None
    except kv.SchemaNotFoundError as exc:
        raise ExportError(f"{what}: {exc.message}") from None


@cache
def _kserve_validator(version: str) -> Any:
    import jsonschema
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    full = next(v for v in reversed(kv.all_versions()) if kv.major_minor(v) == kv.major_minor(version))
    definitions = kv.schema_contents(f"kubernetes-json-schema/v{full}-local-strict/_definitions.json", full)
    schema = json.loads(KSERVE_SCHEMA.read_text())
    registry: Registry[Any] = Registry().with_resources(
        [(definitions["$id"], Resource.from_contents(definitions)), (schema["$id"], Resource.from_contents(schema))]
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)
