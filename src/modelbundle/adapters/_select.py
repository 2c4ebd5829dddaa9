"""Pick an adapter from a type hint without importing any framework the hint does not use.

A hint can only name numpy, pandas, pydantic or PIL types if the user's module
imported them already, so we look them up in ``sys.modules`` instead of importing.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from ._base import Adapter
from ._markers import DType, Shape

_JSON_ORIGINS: tuple[Any, ...] = (dict, list, tuple, set, frozenset, typing.Union, types.UnionType)
_JSON_SCALARS = (int, float, bool, type(None))


def adapter_for(annotation: Any) -> Adapter | None:
    """The adapter for a parameter or return annotation, or None when no adapter fits."""
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *rest = typing.get_args(annotation)
        metadata = tuple(rest)
    for marker in metadata:
        if isinstance(marker, Adapter):
            return marker

    if annotation is str:
        from ._text import Text

        return Text()
    if annotation in (bytes, bytearray):
        from ._text import Bytes

        return Bytes()

    numpy = sys.modules.get("numpy")
    if numpy is not None and (annotation is numpy.ndarray or typing.get_origin(annotation) is numpy.ndarray):
        return _numpy_adapter(annotation, metadata)

    if isinstance(annotation, type):
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and issubclass(annotation, pydantic.BaseModel):
            from ._pydantic import PydanticModel

            return PydanticModel(annotation)
        pil_image = sys.modules.get("PIL.Image")
        if pil_image is not None and issubclass(annotation, pil_image.Image):
            from ._image import Image

            return Image()
        pandas = sys.modules.get("pandas")
        if pandas is not None and issubclass(annotation, pandas.DataFrame):
            from ._dataframe import DataFrame

            return DataFrame()

    if annotation in _JSON_SCALARS or annotation in _JSON_ORIGINS or typing.get_origin(annotation) in _JSON_ORIGINS:
        from ._pydantic import JSONValue

        try:
            return JSONValue(annotation)
        except Exception:  # pydantic cannot build a schema for it: no adapter fits
            return None
    return None


def _numpy_adapter(annotation: Any, metadata: tuple[Any, ...]) -> Adapter:
    from ._numpy import NumpyArray

    dtype: Any = None
    args = typing.get_args(annotation)  # NDArray[np.float32] is ndarray[shape, dtype[float32]]
    if len(args) == 2:
        dtype_args = typing.get_args(args[1])
        if dtype_args and isinstance(dtype_args[0], type):
            dtype = dtype_args[0]
    shape = None
    for marker in metadata:
        if isinstance(marker, Shape):
            shape = marker.dims
        elif isinstance(marker, DType):
            dtype = marker.name
    return NumpyArray(dtype=dtype, shape=shape)
