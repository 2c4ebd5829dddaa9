"""Open Inference Protocol (KServe V2) tensors <-> numpy arrays: JSON ``data`` and the binary extension.

Pure functions on bytes and arrays: ``parse_request`` reads an inference
request (JSON, or JSON followed by binary tensors when the
``Inference-Header-Content-Length`` header is given), ``encode_response``
writes one. Binary tensors are little-endian, row-major; a BYTES element is
a 4-byte little-endian length followed by its bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..adapters import finite_cast
from ..errors import BadRequest, InvalidInput
from ._codec import refuse_non_finite_literal

#: protocol datatype -> numpy dtype (BYTES elements are ``bytes`` objects in an object array)
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
_LENGTH = struct.Struct("<I")
#: numpy's limit on an array's dimensions
MAX_DIMS = 64
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def datatype_of(dtype: np.dtype[Any]) -> str | None:
    """The protocol datatype of a numpy dtype; bytes, str and object arrays are BYTES; None if none fits."""
    if dtype.kind in "OSU":
        return "BYTES"
    return _BY_DTYPE.get(dtype.newbyteorder("="))


@dataclass(frozen=True)
class Tensor:
    """One input tensor of a request, decoded."""

    name: str
    datatype: str
    array: np.ndarray[Any, Any]


@dataclass(frozen=True)
class RequestedOutput:
    """One entry of a request's ``outputs``; ``binary`` is None when the client left it to the default."""

    name: str
    binary: bool | None


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request."""

    id: str | None
    inputs: list[Tensor]
    #: None when the request names no outputs: return them all
    outputs: list[RequestedOutput] | None
    #: the ``binary_data_output`` request parameter: the default for outputs not asking themselves
    binary_output: bool


# -- requests -----------------------------------------------------------------------------------
def parse_request(body: bytes, header_length: int | None) -> InferRequest:
    """Decode an inference request; ``header_length`` is the Inference-Header-Content-Length header."""
    if header_length is None:
        header, binary = body, memoryview(b"")
    else:
        if not 0 < header_length <= len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length is {header_length}, but the body holds {len(body)} bytes"
            )
        header, binary = body[:header_length], memoryview(body)[header_length:]
    if not header:
        raise BadRequest("empty body; send an inference request JSON object with 'inputs'")
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        refuse_non_finite_literal(header, exc)
        raise BadRequest(f"malformed JSON in the inference request: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest("the inference request must be a JSON object with 'inputs'")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    parameters = _parameters(document, "the request")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("the inference request needs 'inputs', a non-empty list of tensors")
    inputs: list[Tensor] = []
    offset = 0
    for raw in raw_inputs:
        tensor, used = _parse_input(raw, binary, offset)
        offset += used
        inputs.append(tensor)
    if offset != len(binary):
        raise BadRequest(
            f"the body holds {len(binary)} bytes after the JSON header, but the inputs' binary_data_size add up to {offset}"
        )
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise BadRequest(f"input names must be unique, got {names}")
    return InferRequest(request_id, inputs, _parse_outputs(document), _flag(parameters, "binary_data_output", "the request"))


def _parse_input(raw: Any, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise BadRequest("each input must be an object with a 'name', 'shape', 'datatype' and 'data'")
    name: str = raw["name"]
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequest(f"input '{name}': datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"input '{name}': 'shape' must be a list of non-negative integers, got {shape!r}")
    if len(shape) > MAX_DIMS:
        raise BadRequest(f"input '{name}': 'shape' has {len(shape)} dimensions, more than the {MAX_DIMS} an array may have")
    count = math.prod(shape)
    size = _parameters(raw, f"input '{name}'").get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise BadRequest(f"input '{name}': binary_data_size must be a non-negative integer")
        if "data" in raw:
            raise BadRequest(f"input '{name}' has both 'data' and binary_data_size; send one")
        if offset + size > len(binary):
            raise BadRequest(f"input '{name}': binary_data_size {size} runs past the end of the body")
        array = _from_binary(name, datatype, binary[offset : offset + size], count)
        return Tensor(name, datatype, _checked(name, datatype, _reshaped(name, array, shape))), size
    if "data" not in raw:
        raise BadRequest(f"input '{name}' has no 'data' (nor binary_data_size)")
    array = _from_json(name, datatype, raw["data"])
    if array.size != count:
        raise BadRequest(f"input '{name}': shape {shape} holds {count} elements, 'data' has {array.size}")
    return Tensor(name, datatype, _checked(name, datatype, _reshaped(name, array, shape))), 0


def _checked(name: str, datatype: str, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The array as its datatype, under the check every encoding shares: no NaN or infinity,
    and no float that overflows FP16 or FP32 (JSON data arrives as float64)."""
    if datatype == "BYTES":
        return array
    checked: np.ndarray[Any, Any] = finite_cast(array, DATATYPES[datatype], f"input '{name}'")
    return checked


def _reshaped(name: str, array: np.ndarray[Any, Any], shape: list[int]) -> np.ndarray[Any, Any]:
    try:
        return array.reshape(shape)
    except ValueError:  # a dimension past what an array may hold, as in [0, 2**63]
        raise BadRequest(f"input '{name}': shape {shape} is too large for an array") from None


def _from_json(name: str, datatype: str, data: Any) -> np.ndarray[Any, Any]:
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = _flatten(name, data)
        if not all(isinstance(item, str) for item in flat):
            raise BadRequest(f"input '{name}': BYTES data in JSON must be strings")
        return _object_array([item.encode() for item in flat])
    try:
        array = np.asarray(data)
    except ValueError:
        array = np.asarray(_flatten(name, data))  # nested lists of uneven depth: row-major order still holds
    dtype = DATATYPES[datatype]
    if dtype.kind in "iu" and array.dtype.kind in "fO":
        # integers past int64 (a UINT64 near 2**64) make numpy guess float64 or object: convert exactly
        return _exact_integers(name, datatype, data, array)
    if array.dtype.kind not in "biuf":
        raise BadRequest(f"input '{name}': {datatype} data must be {_json_kind(datatype)}, got {array.dtype.name} values")
    if datatype == "BOOL":
        if array.dtype.kind != "b" and array.size:
            raise BadRequest(f"input '{name}': BOOL data must be true or false")
        return array.astype(dtype, copy=False)
    if dtype.kind in "iu":
        if array.dtype.kind not in "biu" and array.size:
            raise BadRequest(f"input '{name}': {datatype} data must be integers")
        if array.size and array.dtype.kind != "b":
            info, low, high = np.iinfo(dtype), int(array.min()), int(array.max())
            if low < info.min or high > info.max:
                raise BadRequest(f"input '{name}': values {low}..{high} do not fit {datatype}")
    if dtype.kind == "f":  # cast by _checked, which refuses what overflows
        return array
    return array.astype(dtype, copy=False)


def _exact_integers(name: str, datatype: str, data: list[Any], guessed: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    dtype = DATATYPES[datatype]
    if guessed.dtype.kind == "O":
        guessed = np.asarray(_flatten(name, data), dtype=object)
        if not all(type(item) is int for item in guessed.tolist()):
            raise BadRequest(f"input '{name}': {datatype} data must be integers")
    try:
        exact = np.asarray(guessed.tolist() if guessed.dtype.kind == "O" else data, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        raise BadRequest(f"input '{name}': the values do not fit {datatype}") from None
    if guessed.dtype.kind == "f" and not np.array_equal(exact.astype(np.float64).reshape(-1), guessed.reshape(-1)):
        raise BadRequest(f"input '{name}': {datatype} data must be integers")
    return exact


def _from_binary(name: str, datatype: str, chunk: memoryview, count: int) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        return _object_array(_split_bytes(name, chunk, count))
    dtype = DATATYPES[datatype].newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise BadRequest(
            f"input '{name}': {count} {datatype} elements take {count * dtype.itemsize} bytes, binary_data_size is {len(chunk)}"
        )
    # a copy: the model may write into its input, and a view would keep the whole body alive
    return np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="))


def _split_bytes(name: str, chunk: memoryview, count: int) -> list[bytes]:
    items: list[bytes] = []
    offset, end = 0, len(chunk)
    while offset < end:
        if offset + 4 > end:
            raise BadRequest(f"input '{name}': BYTES binary data ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > end:
            raise BadRequest(f"input '{name}': a BYTES element of {length} bytes runs past its binary_data_size")
        items.append(bytes(chunk[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise BadRequest(f"input '{name}': the shape holds {count} elements, the binary data has {len(items)}")
    return items


def _parse_outputs(document: dict[str, Any]) -> list[RequestedOutput] | None:
    raw_outputs = document.get("outputs")
    if raw_outputs is None:
        return None
    if not isinstance(raw_outputs, list):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    outputs = []
    for raw in raw_outputs:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise BadRequest("each requested output must be an object with a 'name'")
        where = f"output '{raw['name']}'"
        parameters = _parameters(raw, where)
        if parameters.get("classification"):
            raise BadRequest(f"{where}: the classification extension is not supported")
        binary = _flag(parameters, "binary_data", where) if "binary_data" in parameters else None
        outputs.append(RequestedOutput(raw["name"], binary))
    return outputs or None


def _parameters(owner: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = owner.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}: 'parameters' must be an object")
    return parameters


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{where}: parameter {key} must be true or false")
    return value


def _flatten(name: str, data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > 64:
                    raise BadRequest(f"input '{name}': 'data' is nested too deeply")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _object_array(items: Sequence[bytes]) -> np.ndarray[Any, Any]:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _json_kind(datatype: str) -> str:
    return "true/false" if datatype == "BOOL" else "strings" if datatype == "BYTES" else "numbers"


# -- inputs for an API ------------------------------------------------------------------------------
def as_declared(tensor: Tensor, dtype: np.dtype[Any] | None, shape: Sequence[int] | None) -> np.ndarray[Any, Any]:
    """The tensor's array for a parameter declared with ``dtype`` and ``shape`` (None: any), or InvalidInput."""
    array = tensor.array
    if dtype is not None:
        expected = datatype_of(dtype)
        if tensor.datatype != expected:
            raise InvalidInput(f"input '{tensor.name}': expected datatype {expected}, got {tensor.datatype}")
        if dtype.kind == "S":
            array = array.astype(np.bytes_)
        elif dtype.kind == "U":
            try:
                array = np.array([item.decode() for item in array.reshape(-1).tolist()], dtype=np.str_).reshape(array.shape)
            except UnicodeDecodeError:
                raise InvalidInput(f"input '{tensor.name}': the elements must be UTF-8 text") from None
    elif tensor.datatype == "BYTES":
        raise InvalidInput(f"input '{tensor.name}': expected a numeric datatype, got BYTES")
    if shape is not None and not _shape_matches(shape, array.shape):
        raise InvalidInput(f"input '{tensor.name}': expected shape {list(shape)}, got {list(array.shape)}")
    return array


def _shape_matches(expected: Sequence[int], actual: Sequence[int]) -> bool:
    return len(expected) == len(actual) and all(want in (-1, got) for want, got in zip(expected, actual, strict=True))


# -- responses ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Output:
    """One output tensor to send, and whether it goes as binary data."""

    name: str
    array: np.ndarray[Any, Any]
    binary: bool


def encode_response(
    model_name: str, model_version: str, request_id: str | None, outputs: Sequence[Output]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it (else None).

    Raises ValueError for an array no datatype fits, and BadRequest for BYTES that cannot go in JSON.
    """
    documents = []
    chunks: list[bytes] = []
    for output in outputs:
        array = output.array
        datatype = datatype_of(array.dtype)
        if datatype is None:
            raise ValueError(f"output '{output.name}' is an array of {array.dtype.name}, which has no protocol datatype")
        document: dict[str, Any] = {"name": output.name, "datatype": datatype, "shape": list(array.shape)}
        if output.binary:
            chunk = _to_binary(array, datatype)
            document["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            document["data"] = _to_json(output.name, array, datatype)
        documents.append(document)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = documents
    header = orjson.dumps(response, option=_ORJSON_OPTIONS)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _to_json(name: str, array: np.ndarray[Any, Any], datatype: str) -> Any:
    if datatype == "BYTES":
        try:
            return [_as_bytes(item).decode() for item in array.reshape(-1).tolist()]
        except UnicodeDecodeError:
            raise BadRequest(f"output '{name}' holds bytes that are not UTF-8; request it with binary_data") from None
    # orjson writes contiguous native arrays itself, far faster than tolist()
    return np.ascontiguousarray(array.reshape(-1)).astype(array.dtype.newbyteorder("="), copy=False)


def _to_binary(array: np.ndarray[Any, Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for item in array.reshape(-1).tolist():
            data = _as_bytes(item)
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return str(item).encode()


def error_body(message: str) -> bytes:
    """The protocol's error object."""
    return orjson.dumps({"error": message})
