"""Each adapter described as plain JSON (``x-modelbundle-adapter`` in the OpenAPI document), and
back: a client that has only the server's schema encodes and decodes with the same adapters.

A pydantic model cannot be rebuilt from its schema without generating code, so a client sees it
as a dict (and sends a model instance, or a dict, as its JSON); any other JSON type passes as is.
"""

from __future__ import annotations

from typing import Any

from ._base import Adapter


def adapter_hint(adapter: Adapter) -> dict[str, Any]:
    """What a client needs to rebuild ``adapter``: its kind, and for arrays their dtype and shape."""
    kind = type(adapter).__name__
    if kind == "NumpyArray":
        dtype = getattr(adapter, "dtype", None)
        shape = getattr(adapter, "shape", None)
        return {"kind": "ndarray", "dtype": dtype.name if dtype is not None else None, "shape": list(shape) if shape is not None else None}
    if kind == "DataFrame":
        return {"kind": "dataframe", "columns": getattr(adapter, "columns", None)}
    if kind == "PydanticModel":
        return {"kind": "model", "model": adapter.model.__name__}  # type: ignore[attr-defined]
    return {"kind": _KINDS.get(kind, "json")}


_KINDS = {"Text": "text", "Bytes": "bytes", "Image": "image"}


def adapter_from_hint(hint: dict[str, Any]) -> Adapter:
    """The adapter ``adapter_hint`` described (an unknown kind, from a newer server: plain JSON)."""
    kind = hint.get("kind")
    if kind == "ndarray":
        from ._numpy import NumpyArray

        return NumpyArray(dtype=hint.get("dtype"), shape=hint.get("shape"))
    if kind == "dataframe":
        from ._dataframe import DataFrame

        return DataFrame(columns=hint.get("columns"))
    if kind == "image":
        from ._image import Image

        return Image()
    if kind in ("text", "bytes"):
        from ._text import Bytes, Text

        return Text() if kind == "text" else Bytes()
    return PlainJSON()


class PlainJSON(Adapter):
    """Any JSON value, as is; a pydantic model (or a dataclass) given as input is sent as its JSON."""

    def describe(self) -> str:
        return "a JSON value"

    def from_json(self, value: Any, field: str) -> Any:
        return value

    def to_json(self, value: Any) -> Any:
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        if type(value).__module__ == "numpy":  # np.float32(2.0) for a float, an array for a list
            return value.tolist()
        from pydantic_core import to_jsonable_python

        return to_jsonable_python(value)
