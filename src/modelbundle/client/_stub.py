"""``bundle client``: a typed Python module for one bundle's APIs, from its ``openapi.json``.

The module wraps ``modelbundle.Client`` with one method per API whose parameters and return type
are the bundle's, so mypy and IDEs check calls. Arrays are ``NDArray`` of their dtype, images
``PIL.Image.Image``, pydantic models ``TypedDict``s of their fields (the client sends and returns
them as dicts), other JSON types what their schema says.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

_SCALARS = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "null": "None"}
_REF = re.compile(r"^#/components/schemas/(.+)$")


def class_name(bundle_name: str) -> str:
    """``iris`` -> ``IrisClient``, ``text-embed`` -> ``TextEmbedClient``."""
    words = re.split(r"[^0-9A-Za-z]+", bundle_name)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Bundle"
    return ("_" + name if name[0].isdigit() else name) + "Client"


class _Writer:
    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas
        self.typed_dicts: dict[str, list[str]] = {}
        self.imports: set[str] = set()

    # -- types --------------------------------------------------------------------------
    def adapter_type(self, hint: Mapping[str, Any], schema: Mapping[str, Any], as_input: bool) -> str:
        kind = hint.get("kind")
        if kind == "ndarray":
            self.imports.update({"import numpy as np", "from numpy.typing import NDArray"})
            dtype = hint.get("dtype")
            array = f"NDArray[np.{dtype}]" if dtype and dtype.isidentifier() else "NDArray[Any]"
            # nested lists work as input too (the client converts them, the server checks them)
            return f"{array} | list[Any]" if as_input else array
        if kind == "image":
            self.imports.add("from PIL import Image")
            return "Image.Image"
        if kind == "dataframe":
            return "Any"  # a pandas.DataFrame: pandas ships no type information for mypy --strict
        if kind == "text":
            return "str"
        if kind == "bytes":
            return "bytes"
        return self.schema_type(schema)

    def schema_type(self, schema: Mapping[str, Any]) -> str:
        if not isinstance(schema, Mapping):
            return "Any"
        ref = schema.get("$ref")
        if isinstance(ref, str) and _REF.match(ref):
            return self.typed_dict(_REF.match(ref).group(1))  # type: ignore[union-attr]
        for union in ("anyOf", "oneOf"):
            if isinstance(schema.get(union), list):
                return _union(self.schema_type(s) for s in schema[union])
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union(self.schema_type({**schema, "type": k}) for k in kind)
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind == "array":
            items = schema.get("items")
            return f"list[{self.schema_type(items) if isinstance(items, Mapping) else 'Any'}]"
        if kind == "object":
            extra = schema.get("additionalProperties")
            value = self.schema_type(extra) if isinstance(extra, Mapping) and extra else "Any"
            return f"dict[str, {value}]"
        return "Any"

    def typed_dict(self, name: str) -> str:
        python_name = re.sub(r"\W", "_", name)
        if python_name in self.typed_dicts:
            return python_name
        self.typed_dicts[python_name] = []  # first, so a model that refers to itself ends
        schema = self.schemas.get(name, {})
        required = set(schema.get("required", []))
        lines = []
        for field, field_schema in schema.get("properties", {}).items():
            if not field.isidentifier() or keyword.iskeyword(field):
                return "dict[str, Any]"  # a TypedDict class cannot name it; the functional form is not worth it
            field_type = self.schema_type(field_schema)
            lines.append(f"    {field}: {field_type}" if field in required else f"    {field}: NotRequired[{field_type}]")
        self.typed_dicts[python_name] = lines or ["    pass"]
        return python_name

    # -- the module ---------------------------------------------------------------------
    def method(self, name: str, operation: Mapping[str, Any]) -> list[str]:
        hint = operation["x-modelbundle"]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        properties = _fields_of(body)
        output_schema = _output_schema(operation)
        params = sorted(hint["params"], key=lambda p: not p["required"])
        signature = ["self"]
        for param in params:
            annotation = self.adapter_type(param["adapter"], properties.get(param["name"], {}), as_input=True)
            signature.append(f"{param['name']}: {annotation}" + ("" if param["required"] else " = _SERVER_DEFAULT"))
        result = self.adapter_type(hint["output"], output_schema, as_input=False)
        if hint.get("streaming"):
            self.imports.add("from collections.abc import Iterator")
            result = f"Iterator[{result}]"
        arguments = ", ".join(f'"{p["name"]}": {p["name"]}' for p in params)
        doc = (operation.get("summary") or name).replace('"""', "'''").replace("\\", "\\\\")
        return [
            f"    def {name}({', '.join(signature)}) -> {result}:",
            f'        """{doc}"""',
            f"        arguments = {{{arguments}}}",
            f'        return cast("{result}", self.client.call("{name}", **_given(arguments)))',
        ]


def _fields_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    for schema in [body, *body.get("anyOf", [])]:
        if isinstance(schema, Mapping) and schema.get("type") == "object" and "properties" in schema:
            return schema["properties"]  # type: ignore[no-any-return]
    return {}


def _output_schema(operation: Mapping[str, Any]) -> Mapping[str, Any]:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    for media_type in ("application/json", "application/x-ndjson"):
        if media_type in content:
            return content[media_type].get("schema", {})  # type: ignore[no-any-return]
    return {}


def _union(types: Any) -> str:
    unique = list(dict.fromkeys(types))
    return "Any" if "Any" in unique else " | ".join(unique)


def render_stub(document: Mapping[str, Any], tag: str) -> str:
    """The source of a module with one typed client class for the bundle whose OpenAPI ``document`` this is."""
    writer = _Writer(document.get("components", {}).get("schemas", {}))
    title = str(document.get("info", {}).get("title", tag.partition(":")[0]))
    methods: list[str] = []
    for item in document.get("paths", {}).values():
        operation = item.get("post") if isinstance(item, Mapping) else None
        if isinstance(operation, Mapping) and isinstance(operation.get("x-modelbundle"), Mapping):
            name = str(operation["operationId"])
            if name.isidentifier() and not keyword.iskeyword(name) and name not in _RESERVED:
                methods.extend(["", *writer.method(name, operation)])
    cls = class_name(title)
    lines = [
        f'"""A typed client for {tag}, written by `bundle client {tag}` from its openapi.json; do not edit."""',
        "",
        "from __future__ import annotations",
        "",
        *_imports(writer),
        "",
        "#: a parameter left out: the server fills in the API's default",
        "_SERVER_DEFAULT: Any = object()",
        "",
        "",
        "def _given(arguments: dict[str, Any]) -> dict[str, Any]:",
        "    return {name: value for name, value in arguments.items() if value is not _SERVER_DEFAULT}",
        "",
    ]
    for name, fields in writer.typed_dicts.items():
        lines.extend(["", f"class {name}(TypedDict):", *fields, ""])
    lines.extend([
        "",
        f"class {cls}:",
        f'    """The APIs of {tag}, over HTTP (``modelbundle.Client`` underneath, as ``.client``)."""',
        "",
        "    def __init__(self, url: str, *, api_key: str | None = None, timeout: float | None = 60.0) -> None:",
        "        self.client = modelbundle.Client(url, api_key=api_key, timeout=timeout)",
        "",
        "    def close(self) -> None:",
        "        self.client.close()",
        "",
        f"    def __enter__(self) -> {cls}:",
        "        return self",
        "",
        "    def __exit__(",
        "        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None",
        "    ) -> None:",
        "        self.close()",
        *methods,
        "",
    ])
    return "\n".join(lines).rstrip() + "\n"


def _imports(writer: _Writer) -> list[str]:
    """The standard library, then third parties, then modelbundle, each group sorted (as isort would)."""
    standard = ["from types import TracebackType", "from typing import Any, cast"]
    standard.extend(i for i in writer.imports if i.startswith("from collections"))
    third = [i for i in writer.imports if not i.startswith("from collections")]
    if writer.typed_dicts:
        third.append("from typing_extensions import NotRequired, TypedDict")  # typing's needs Python 3.11
    groups = [sorted(standard, key=_module_of), sorted(third, key=_module_of), ["import modelbundle"]]
    return [line for group in groups if group for line in [*group, ""]]


def _module_of(line: str) -> tuple[bool, str]:
    # isort's order: `import x` lines first, then `from x import y`, by module, case ignored
    return line.startswith("from "), line.split()[1].lower()


#: method names the generated class has itself
_RESERVED = frozenset({"client", "close"})
