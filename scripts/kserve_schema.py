"""Write the JSON schema of KServe's InferenceService (serving.kserve.io/v1beta1) from the kserve SDK's models.

No PyPI package ships the InferenceService CRD's openAPIV3Schema, but the
``kserve`` wheel's generated models (``kserve/models/*.py``) carry every field's
type (``openapi_types``), its JSON name (``attribute_map``) and which fields are
required (their setters refuse None). This script reads those files as text
(``ast``; the SDK and its dependencies are not installed or imported) and
writes a draft 2020-12 schema in which:

- every KServe type is an object with ``additionalProperties: false`` (strict);
- every Kubernetes type (``V1Container``, ``V1ObjectMeta``...) is a ``$ref`` into
  the ``_definitions.json`` that kubernetes-validate ships, so containers, probes
  and resources are checked against the real Kubernetes schema of the version chosen.

    python scripts/kserve_schema.py [KSERVE_WHEEL]   # default: pip download kserve==VERSION --no-deps
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

KSERVE_VERSION = "0.21.0"
OUTPUT = Path(__file__).resolve().parents[1] / "src/modelbundle/exporters/kubernetes/schemas/inferenceservice-serving-v1beta1.json"
ROOT = "V1beta1InferenceService"
K8S = "/api/_definitions.json#/$defs/"
#: where kubernetes-python's class names live in the definitions, most likely first
_K8S_GROUPS = ("io.k8s.api.core.v1", "io.k8s.apimachinery.pkg.apis.meta.v1", "io.k8s.api.apps.v1", "io.k8s.api.autoscaling.v2")
_PRIMITIVES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "object": {},
    "ResourceQuantity": {"$ref": K8S + "io.k8s.apimachinery.pkg.api.resource.Quantity"},
}
_REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


def read_models(wheel: Path) -> dict[str, tuple[dict[str, str], dict[str, str], set[str]]]:
    """class name -> (openapi_types, attribute_map, required python names), for every model in the wheel."""
    models = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not re.fullmatch(r"kserve/models/v\w+\.py", name):
                continue
            source = archive.read(name).decode()
            for node in ast.parse(source).body:
                if not isinstance(node, ast.ClassDef):
                    continue
                tables: dict[str, dict[str, str]] = {}
                for item in node.body:
                    target = item.targets[0] if isinstance(item, ast.Assign) else None
                    if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
                        tables[target.id] = ast.literal_eval(item.value)  # type: ignore[union-attr]
                if "openapi_types" in tables:
                    models[node.name] = (tables["openapi_types"], tables["attribute_map"], set(_REQUIRED.findall(source)))
    return models


def k8s_ref(type_name: str, definitions: set[str]) -> dict[str, Any] | None:
    if type_name.startswith("K8sIoApi"):  # K8sIoApiAppsV1DeploymentStrategy -> io.k8s.api.apps.v1.DeploymentStrategy
        match = re.fullmatch(r"K8sIoApi([A-Z][a-z]+)(V\d\w*?)([A-Z]\w*)", type_name)
        if match:
            key = f"io.k8s.api.{match[1].lower()}.{match[2].lower()}.{match[3]}"
            return {"$ref": K8S + key} if key in definitions else None
    match = re.fullmatch(r"(V\d(?:alpha\d|beta\d)?)([A-Z]\w*)", type_name)
    if not match:
        return None
    version, kind = match[1].lower(), match[2]
    for group in _K8S_GROUPS:
        key = f"{group.rsplit('.', 1)[0]}.{version}.{kind}"
        if key in definitions:
            return {"$ref": K8S + key}
    found = sorted(key for key in definitions if key.endswith(f".{version}.{kind}"))
    return {"$ref": K8S + found[0]} if len(found) == 1 else None


def build_schema(models: dict[str, tuple[dict[str, str], dict[str, str], set[str]]], definitions: set[str]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    unmapped: set[str] = set()

    def schema_of(type_name: str) -> dict[str, Any]:
        type_name = type_name.strip()
        if type_name.startswith("list[") and type_name.endswith("]"):
            return {"type": "array", "items": schema_of(type_name[5:-1])}
        if type_name.startswith("dict(") and type_name.endswith(")"):
            return {"type": "object", "additionalProperties": schema_of(type_name[5:-1].split(",", 1)[1])}
        if type_name in _PRIMITIVES:
            return dict(_PRIMITIVES[type_name])
        if type_name in models:
            visit(type_name)
            return {"$ref": f"#/$defs/{type_name}"}
        ref = k8s_ref(type_name, definitions)
        if ref is None:
            unmapped.add(type_name)
            return {}
        return ref

    def visit(name: str) -> None:
        if name in defs:
            return
        defs[name] = {}  # placeholder against cycles
        types, attributes, required = models[name]
        defs[name] = {
            "type": "object",
            "properties": {attributes[field]: schema_of(types[field]) for field in sorted(types)},
            "additionalProperties": False,
        }
        if required:
            defs[name]["required"] = sorted(attributes[field] for field in required if field in attributes)

    visit(ROOT)
    root = defs[ROOT]
    root["properties"]["apiVersion"] = {"type": "string", "enum": ["serving.kserve.io/v1beta1"]}
    root["properties"]["kind"] = {"type": "string", "enum": ["InferenceService"]}
    root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    if unmapped:
        print(f"types without a schema (accepting anything): {sorted(unmapped)}", file=sys.stderr)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://kubernetes.io/api/inferenceservice-serving-v1beta1.json",
        "description": f"InferenceService, from the models of the kserve {KSERVE_VERSION} Python SDK (scripts/kserve_schema.py)",
        "$ref": f"#/$defs/{ROOT}",
        "$defs": dict(sorted(defs.items())),
    }


def main() -> None:
    import kubernetes_validate.utils as kv

    if len(sys.argv) > 1:
        wheel = Path(sys.argv[1])
    else:
        target = Path(tempfile.mkdtemp())
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"kserve=={KSERVE_VERSION}", "--no-deps", "-d", target], check=True
        )
        wheel = next(target.glob("kserve-*.whl"))
    latest = kv.latest_version()
    definitions = set(kv.schema_contents(f"kubernetes-json-schema/v{latest}-local-strict/_definitions.json", latest)["$defs"])
    schema = build_schema(read_models(wheel), definitions)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUTPUT} ({len(schema['$defs'])} KServe types)")


if __name__ == "__main__":
    main()
