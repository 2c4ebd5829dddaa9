"""numpy arrays: JSON nested lists, ``application/x-npy`` or ``text/csv`` bodies, with dtype and shape checks."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BadRequest
from ._base import FINITE_HINT, JSON, Adapter, invalid

NPY = "application/x-npy"
#: rows of comma-separated numbers, no header (what SageMaker's built-in algorithms take)
CSV = "text/csv"

# dtype kinds a JSON or npy input may be cast from, per declared kind (b bool, i int, u uint, f float, c complex);
# JSON integers arrive as int64, so ints may become uints when every value fits (checked in _check)
_CASTABLE_KINDS = {
    "b": "b",
    "i": "biu",
    "u": "biu",
    "f": "biuf",
    "c": "biufc",
}
_JSON_SCHEMA_TYPE = {"b": "boolean", "i": "integer", "u": "integer", "f": "number", "c": "number"}


class NumpyArray(Adapter):
    """A numpy array, optionally with a declared dtype and shape (-1 or None for any size)."""

    media_types = (JSON, NPY, CSV)
    batchable = True
    json_object = False

    def __init__(self, dtype: Any = None, shape: Sequence[int | None] | None = None) -> None:
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.shape = tuple(-1 if d is None else int(d) for d in shape) if shape is not None else None

    def describe(self) -> str:
        dtype = self.dtype.name if self.dtype is not None else "any dtype"
        shape = f"shape {_shape_text(self.shape)}" if self.shape is not None else "any shape"
        return f"array of {dtype}, {shape}"

    def from_json(self, value: Any, field: str) -> Any:
        if not isinstance(value, list | int | float | bool):
            raise invalid(field, f"expected a nested list of numbers ({self.describe()}), got {_json_type(value)}")
        try:
            array = np.asarray(value)
        except ValueError:
            raise invalid(field, "rows of different lengths (a ragged array)") from None
        if array.size == 0 and array.ndim == 1 and self.shape is not None and len(self.shape) > 1 and -1 not in self.shape[1:]:
            # [] is what an array of no rows, shape (0, 4), looks like in JSON
            array = array.reshape((0, *self.shape[1:]))
        return self._check(array, field)

    def from_python(self, value: Any, field: str) -> Any:
        if isinstance(value, np.ndarray):
            return self._check(value, field)
        return self.from_json(value, field)

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        if media_type == CSV:
            return self._check(self._parse_csv(body, field), field)
        if media_type != NPY:
            return super().from_body(body, media_type, field)
        if not body:
            raise BadRequest(f"{field}: empty .npy body; send an array saved with numpy.save")
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as exc:
            raise BadRequest(f"{field}: body is not a valid .npy file ({exc})") from None
        return self._check(array, field)

    def _parse_csv(self, body: bytes, field: str) -> np.ndarray:
        """Rows of numbers -> a 2-d array (1-d when the declared shape is 1-d and the CSV is one row or column)."""
        if not body.strip():
            raise BadRequest(f"{field}: empty CSV body; send rows of comma-separated numbers")
        # floats are read as float64 and cast by _check, which refuses what overflows a float32
        dtype = self.dtype if self.dtype is not None and self.dtype.kind in "biu" else np.float64
        try:
            array = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2, dtype=dtype, comments=None)
        except ValueError as exc:
            raise BadRequest(f"{field}: not CSV rows of numbers ({exc})") from None
        if self.shape is not None and len(self.shape) == 1 and 1 in array.shape:
            array = array.reshape(-1)
        return array

    def _check(self, array: np.ndarray, field: str) -> np.ndarray:
        if array.dtype.kind in "OUSV":
            raise invalid(field, f"expected numbers ({self.describe()}), got {array.dtype.name} values")
        if self.dtype is not None and array.dtype != self.dtype:
            if array.dtype.kind not in _CASTABLE_KINDS.get(self.dtype.kind, ""):
                raise invalid(field, f"expected dtype {self.dtype.name}, got {array.dtype.name}")
            if array.dtype.kind in "iu" and self.dtype.kind in "iu" and array.size:
                # astype wraps out-of-range integers silently (300 -> 44 for uint8); refuse instead
                info, low, high = np.iinfo(self.dtype), int(array.min()), int(array.max())
                if low < info.min or high > info.max:
                    raise invalid(field, f"values {low}..{high} do not fit dtype {self.dtype.name}")
        array = finite_cast(array, self.dtype, field)
        if self.shape is not None and not _shape_matches(self.shape, array.shape):
            raise invalid(field, f"expected shape {_shape_text(self.shape)}, got {_shape_text(array.shape)}")
        return array

    def to_json(self, value: Any) -> Any:
        array = np.asarray(value)
        # orjson serialises C-contiguous arrays of native types itself, far faster than tolist();
        # it refuses 0-d arrays (an API returning x.sum()), which tolist() turns into a plain number
        if array.ndim and array.flags.c_contiguous and array.dtype.isnative and array.dtype.kind in "biuf":
            return array
        return array.tolist()

    def to_body(self, value: Any, media_type: str) -> bytes:
        if media_type == CSV:
            return _csv_rows(np.asarray(value))
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        return buffer.getvalue()

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        kind = self.dtype.kind if self.dtype is not None else "f"
        schema: dict[str, Any] = {"type": _JSON_SCHEMA_TYPE.get(kind, "number")}
        if self.shape is None:
            return {"type": "array", "description": "nested lists of numbers, any shape"}
        for size in reversed(self.shape):
            schema = {"type": "array", "items": schema}
            if size != -1:
                schema["minItems"] = schema["maxItems"] = size
        schema["description"] = self.describe()
        return schema

    def body_schema(self, media_type: str) -> dict[str, Any]:
        # an empty body is refused in every encoding; no rows is [] in JSON, or an .npy of shape (0, ...)
        if media_type == CSV:
            return {"type": "string", "pattern": r"\S", "description": "rows of comma-separated numbers, no header"}
        return {"type": "string", "format": "binary", "minLength": 1, "description": "an array saved by numpy.save"}

    def rows(self, value: Any, dim: int) -> int:
        return int(value.shape[dim]) if value.ndim > dim else 1

    def batch(self, values: Sequence[Any], dim: int) -> Any:
        return np.concatenate(values, axis=dim)

    def empty(self, dim: int) -> Any:
        # an empty answer needs the dtype, and every other dimension's size (unknown ones are 0)
        if self.dtype is None or (self.shape is None and dim != 0):
            return None
        shape = tuple(0 if axis == dim else max(size, 0) for axis, size in enumerate(self.shape or (0,)))
        return np.empty(shape, dtype=self.dtype)

    def unbatch(self, value: Any, sizes: Sequence[int], dim: int) -> list[Any]:
        array = np.asarray(value)
        total = sum(sizes)
        if array.ndim <= dim or array.shape[dim] != total:
            got = array.shape[dim] if array.ndim > dim else "no"
            raise ValueError(f"the API returned {got} rows along dimension {dim} for a batch of {total}")
        bounds = np.cumsum(sizes)[:-1]
        return list(np.split(array, bounds, axis=dim))


def finite_cast(array: np.ndarray, dtype: np.dtype[Any] | None, field: str) -> np.ndarray:
    """``array`` as ``dtype`` (None: unchanged), refusing NaN, infinity and numbers too big for ``dtype`` (InvalidInput).

    JSON has no NaN or infinity, so no encoding (CSV, .npy, binary tensors) may bring them in either: the
    same input gets the same answer whatever its encoding. A float cast overflows to infinity silently
    (1e308 as float32), which would reach the model as a value the client never sent.
    """
    if dtype is not None and array.dtype != dtype:
        with np.errstate(over="ignore", invalid="ignore"):
            cast = array.astype(dtype)
    else:
        cast = array
    if cast.dtype.kind not in "fc" or not cast.size:
        return cast
    finite = np.isfinite(cast)
    if finite.all():
        return cast
    index = np.unravel_index(int(np.argmin(finite)), cast.shape)
    where = f" at {list(map(int, index))}" if index else ""
    given = array[index]
    if np.isfinite(given):
        largest = np.finfo(cast.dtype).max
        raise invalid(field, f"{given.item()!r}{where} does not fit {cast.dtype.name} (largest {largest!s})")
    raise invalid(field, f"{_non_finite_name(given.item())}{where} is not accepted; {FINITE_HINT}")


def _non_finite_name(value: Any) -> str:
    if isinstance(value, complex):
        return "a complex number with NaN or infinity"
    return "NaN" if value != value else "infinity" if value > 0 else "-infinity"


def _csv_rows(array: np.ndarray) -> bytes:
    """One line per row (a 1-d array: one value per line); numbers as Python prints them, shortest round trip."""
    if array.ndim > 2:
        raise ValueError(f"an array of {array.ndim} dimensions has no CSV form; ask for application/json or {NPY}")
    rows = array.reshape(-1, 1) if array.ndim < 2 else array
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows.tolist()).encode("ascii")


def _shape_matches(expected: Sequence[int], actual: Sequence[int]) -> bool:
    if len(expected) != len(actual):
        return False
    return all(want in (-1, got) for want, got in zip(expected, actual, strict=True))


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join("N" if d == -1 else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _json_type(value: Any) -> str:
    return {dict: "an object", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)
