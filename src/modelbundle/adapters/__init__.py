"""Wire <-> Python adapters, picked from type hints or given explicitly to ``@api(input=..., output=...)``.

Adapters for numpy, pandas, pydantic and Pillow types are loaded on first use,
so importing this package loads none of those libraries.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._artifact_kinds import KINDS as ARTIFACT_KINDS
from ._artifact_kinds import ArtifactKind, artifact_kind, check_framework_version
from ._base import FINITE_HINT, JSON, Adapter
from ._hints import PlainJSON, adapter_from_hint, adapter_hint
from ._markers import DType, Shape
from ._select import adapter_for

__all__ = [
    "ARTIFACT_KINDS",
    "FINITE_HINT",
    "JSON",
    "Adapter",
    "ArtifactKind",
    "Bytes",
    "DType",
    "DataFrame",
    "Image",
    "JSONValue",
    "NumpyArray",
    "Pickled",
    "PlainJSON",
    "PydanticModel",
    "Shape",
    "Text",
    "adapter_for",
    "adapter_from_hint",
    "adapter_hint",
    "artifact_kind",
    "check_framework_version",
    "finite_cast",
    "reproducible_dumps",
]

_LAZY = {
    "Bytes": "._text",
    "Text": "._text",
    "NumpyArray": "._numpy",
    "finite_cast": "._numpy",
    "JSONValue": "._pydantic",
    "PydanticModel": "._pydantic",
    "Image": "._image",
    "DataFrame": "._dataframe",
    "Pickled": "._pickling",
    "reproducible_dumps": "._pickling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
