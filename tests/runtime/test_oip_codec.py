"""Open Inference Protocol tensors <-> numpy: JSON data, the binary extension, and malformed requests."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from modelbundle.errors import BadRequest, InvalidInput
from modelbundle.runtime._oip_codec import (
    DATATYPES,
    Output,
    Tensor,
    as_declared,
    datatype_of,
    encode_response,
    parse_request,
)

SAMPLES = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-32768, 1, 32767]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 3, 2**63 - 1]], dtype=np.int64),
    "UINT8": np.array([[0, 1, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1]], dtype=np.uint64),
    "FP16": np.array([[0.5, -1.25, 65504.0]], dtype=np.float16),
    "FP32": np.array([[0.1, -2.5, 3.4e38]], dtype=np.float32),
    "FP64": np.array([[0.1, -2.5, 1.7e308]], dtype=np.float64),
    "BYTES": np.array([[b"", b"abc", "é".encode()]], dtype=object),
}


def _json_data(array: np.ndarray) -> list:
    if array.dtype == object:
        return [item.decode() for item in array.reshape(-1)]
    return array.reshape(-1).tolist()


def _binary(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return b"".join(struct.pack("<I", len(item)) + item for item in array.reshape(-1))
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def _request(inputs: list[dict], **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_json_data_decodes_to_the_datatype_and_shape(datatype):
    sample = SAMPLES[datatype]
    body = _request([{"name": "x", "shape": list(sample.shape), "datatype": datatype, "data": _json_data(sample)}])

    (tensor,) = parse_request(body, None).inputs

    assert tensor.array.dtype == DATATYPES[datatype]
    assert tensor.array.shape == sample.shape
    assert tensor.array.tolist() == sample.tolist()


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_binary_data_decodes_to_the_datatype_and_shape(datatype):
    sample = SAMPLES[datatype]
    chunk = _binary(sample)
    header = _request(
        [{"name": "x", "shape": list(sample.shape), "datatype": datatype, "parameters": {"binary_data_size": len(chunk)}}]
    )

    (tensor,) = parse_request(header + chunk, len(header)).inputs

    assert tensor.array.dtype == DATATYPES[datatype]
    assert tensor.array.tolist() == sample.tolist()
    if datatype != "BYTES":
        assert tensor.array.flags.writeable  # a model may write into its input


@pytest.mark.parametrize("datatype", list(SAMPLES))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_outputs_encode_to_the_datatype_in_json_or_binary(datatype, binary):
    sample = SAMPLES[datatype]

    body, json_length = encode_response("m", "1", "req-1", [Output("output", sample, binary)])

    header = json.loads(body[:json_length] if binary else body)
    (output,) = header["outputs"]
    assert (header["model_name"], header["model_version"], header["id"]) == ("m", "1", "req-1")
    assert (output["name"], output["datatype"], output["shape"]) == ("output", datatype, list(sample.shape))
    if binary:
        assert body[json_length:] == _binary(sample)
        assert output["parameters"] == {"binary_data_size": len(body) - json_length}
    else:
        assert json_length is None
        if datatype == "BYTES":
            assert output["data"] == _json_data(sample)
        else:  # float32 and float16 are written in their own shortest form: read them back as that type
            assert np.asarray(output["data"], dtype=sample.dtype).tolist() == sample.reshape(-1).tolist()


def test_binary_inputs_follow_each_other_in_the_order_of_inputs():
    a, b = np.arange(3, dtype=np.int32), np.array([b"x", b"yz"], dtype=object)
    chunks = [_binary(a), _binary(b)]
    header = _request([
        {"name": "a", "shape": [3], "datatype": "INT32", "parameters": {"binary_data_size": len(chunks[0])}},
        {"name": "j", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]},
        {"name": "b", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(chunks[1])}},
    ])  # fmt: skip

    inputs = parse_request(header + b"".join(chunks), len(header)).inputs

    assert [t.array.tolist() for t in inputs] == [[0, 1, 2], [1.5, 2.5], [b"x", b"yz"]]


def test_nested_json_data_is_taken_in_row_major_order():
    body = _request([{"name": "x", "shape": [3, 2], "datatype": "INT64", "data": [[1, 2], [3, 4], [5, 6]]}])

    assert parse_request(body, None).inputs[0].array.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_outputs_binary_data_output_and_id_are_read():
    body = _request(
        [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
        id="abc",
        parameters={"binary_data_output": True},
        outputs=[{"name": "output", "parameters": {"binary_data": False}}, {"name": "other"}],
    )

    request = parse_request(body, None)

    assert request.id == "abc"
    assert request.binary_output is True
    assert [(o.name, o.binary) for o in request.outputs] == [("output", False), ("other", None)]


MALFORMED = [
    pytest.param(b"{", None, "malformed JSON", id="json"),
    pytest.param(b"[]", None, "JSON object", id="not-an-object"),
    pytest.param(b"", None, "empty body", id="empty"),
    pytest.param(_request([]), None, "non-empty list", id="no-inputs"),
    pytest.param(_request([{"name": "x", "shape": [2], "datatype": "FP128", "data": [1, 2]}]), None, "FP128", id="datatype"),
    pytest.param(_request([{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]), None, "non-negative", id="negative-shape"),
    pytest.param(_request([{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]), None, "holds 3 elements, 'data' has 2", id="count"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "FP32"}]), None, "no 'data'", id="no-data"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]), None, "do not fit INT8", id="int-range"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]), None, "integers", id="float-as-int"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]), None, "true or false", id="int-as-bool"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]), None, "strings", id="number-as-bytes"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]), None, "numbers", id="string-as-float"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}] * 2), None, "unique", id="duplicate"),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]), 10**6, "Inference-Header-Content-Length", id="header-length"),
    pytest.param(
        _request([{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]) + b"\0" * 4,
        -4, "2 FP32 elements take 8 bytes", id="binary-size",
    ),
    pytest.param(
        _request([{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]) + b"\0" * 4,
        -4, "runs past the end", id="binary-past-end",
    ),
    pytest.param(
        _request([{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]) + b"\0" * 8,
        -8, "add up to 4", id="binary-trailing",
    ),
    pytest.param(
        _request([{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]) + b"\x09\0\0\0ab",
        -6, "runs past its binary_data_size", id="bytes-length",
    ),
    pytest.param(
        _request([{"name": "x", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}]) + b"\x01\0\0\0a",
        -5, "holds 2 elements, the binary data has 1", id="bytes-count",
    ),
    pytest.param(_request([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], outputs=[{"name": "o", "parameters": {"classification": 2}}]), None, "classification", id="classification"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "header_length", "fragment"), MALFORMED)
def test_a_malformed_request_is_a_bad_request_naming_the_problem(body, header_length, fragment):
    if header_length is not None and header_length < 0:  # binary data of -n bytes follows the JSON
        header_length = len(body) + header_length
    with pytest.raises(BadRequest, match=fragment.replace("(", r"\(")):
        parse_request(body, header_length)


def test_a_declared_dtype_needs_that_exact_datatype():
    tensor = Tensor("x", "FP64", np.zeros((1, 3)))

    with pytest.raises(InvalidInput, match="input 'x': expected datatype FP32, got FP64"):
        as_declared(tensor, np.dtype(np.float32), (-1, 3))


def test_a_declared_shape_checks_rank_and_fixed_dimensions():
    tensor = Tensor("x", "FP32", np.zeros((2, 4), dtype=np.float32))

    assert as_declared(tensor, np.dtype(np.float32), (-1, 4)).shape == (2, 4)
    with pytest.raises(InvalidInput, match=r"input 'x': expected shape \[-1, 3\], got \[2, 4\]"):
        as_declared(tensor, np.dtype(np.float32), (-1, 3))
    with pytest.raises(InvalidInput, match="expected shape"):
        as_declared(tensor, np.dtype(np.float32), (-1,))


def test_bytes_become_str_or_fixed_width_bytes_when_declared_so():
    tensor = Tensor("x", "BYTES", np.array([b"ab", "é".encode()], dtype=object))

    assert as_declared(tensor, np.dtype(np.str_), None).tolist() == ["ab", "é"]
    assert as_declared(tensor, np.dtype("S"), None).tolist() == [b"ab", "é".encode()]
    with pytest.raises(InvalidInput, match="numeric datatype, got BYTES"):
        as_declared(tensor, None, None)


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [("bool", "BOOL"), (">i4", "INT32"), ("<f8", "FP64"), ("S3", "BYTES"), ("U2", "BYTES"), ("O", "BYTES"), ("c16", None)],
)
def test_datatype_of_a_numpy_dtype(dtype, datatype):
    assert datatype_of(np.dtype(dtype)) == datatype


def test_non_utf8_bytes_cannot_go_in_json():
    with pytest.raises(BadRequest, match="not UTF-8; request it with binary_data"):
        encode_response("m", "1", None, [Output("output", np.array([b"\xff"], dtype=object), False)])


def test_big_endian_arrays_are_sent_little_endian():
    array = np.array([1, 2], dtype=">i4")

    body, json_length = encode_response("m", "1", None, [Output("output", array, True)])

    assert body[json_length:] == struct.pack("<2i", 1, 2)
