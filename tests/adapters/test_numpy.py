"""``NumpyArray``: JSON and .npy round trips, dtype and shape checks, batching along any dimension."""

import io
from typing import Annotated, Any

import jsonschema
import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from modelbundle import DType, Shape
from modelbundle.adapters import NumpyArray, adapter_for
from modelbundle.errors import BadRequest, InvalidInput

NPY = "application/x-npy"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def wire(adapter: NumpyArray, value: Any) -> Any:
    """What a client receives: to_json serialised the way the runtime does it, then parsed."""
    return orjson.loads(orjson.dumps(adapter.to_json(value), option=orjson.OPT_SERIALIZE_NUMPY))


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int8", "uint8", "bool"])
def test_json_round_trip_keeps_values_and_declared_dtype(dtype: str) -> None:
    expected = (np.arange(12) % 7).astype(dtype).reshape(3, 4)
    adapter = NumpyArray(dtype=dtype, shape=(-1, 4))
    decoded = adapter.from_json(expected.tolist(), "x")
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, expected)
    assert wire(adapter, decoded) == expected.tolist()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float64).reshape(2, 3).T,  # not C-contiguous
        np.arange(4, dtype=">i4"),  # not native byte order
        np.array([1.5, -2.0], dtype=np.float16),
        np.array(3.25),  # 0-d, as x.sum() returns
        np.float32(0.5),
        np.zeros((2, 0)),
    ],
    ids=["transposed", "big-endian", "float16", "0-d", "numpy-scalar", "empty"],
)
def test_to_json_serialises_any_layout_like_tolist(array: np.ndarray) -> None:
    assert wire(NumpyArray(), array) == array.tolist()


def test_scalar_json_value_becomes_a_0d_array() -> None:
    decoded = NumpyArray(dtype="float32").from_json(2, "x")
    assert decoded.shape == ()
    assert decoded == np.float32(2)


def test_npy_body_round_trip() -> None:
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((5, 3)).astype(np.float32)
    adapter = NumpyArray(dtype="float32", shape=(None, 3))
    decoded = adapter.from_body(npy_bytes(expected), NPY, "x")
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.dtype == expected.dtype
    encoded = adapter.to_body(decoded, NPY)
    np.testing.assert_array_equal(np.load(io.BytesIO(encoded)), expected)


def test_npy_body_is_cast_to_the_declared_dtype() -> None:
    decoded = NumpyArray(dtype="float64").from_body(npy_bytes(np.arange(4, dtype=np.int32)), NPY, "x")
    assert decoded.dtype == np.float64
    np.testing.assert_array_equal(decoded, np.arange(4))


def test_response_media_type_follows_accept() -> None:
    adapter = NumpyArray()
    assert adapter.response_media_type("") == "application/json"
    assert adapter.response_media_type("*/*") == "application/json"
    assert adapter.response_media_type(NPY) == NPY
    assert adapter.response_media_type(f"text/html, {NPY};q=0.9") == NPY


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "value", "match"),
    [
        (NumpyArray(dtype="int64"), [1.5, 2.0], r"^x: expected dtype int64, got float64$"),
        (NumpyArray(dtype="int64"), ["1", "2"], r"^x: expected numbers \(array of int64, any shape\), got str\d* values$"),
        (NumpyArray(), [1, "a"], r"^x: expected numbers .*, got str\d* values$"),
        (NumpyArray(dtype="bool"), [0, 1], r"^x: expected dtype bool, got int64$"),
        (NumpyArray(dtype="uint8"), [0, 256], r"^x: values 0\.\.256 do not fit dtype uint8$"),
        (NumpyArray(dtype="uint8"), [-1, 3], r"^x: values -1\.\.3 do not fit dtype uint8$"),
        (NumpyArray(dtype="int32"), [2**40], r"^x: values \d+\.\.\d+ do not fit dtype int32$"),
        (NumpyArray(shape=(-1, 4)), [[1, 2, 3]], r"^x: expected shape \(N, 4\), got \(1, 3\)$"),
        (NumpyArray(shape=(-1, 4)), [1, 2, 3, 4], r"^x: expected shape \(N, 4\), got \(4,\)$"),
        (NumpyArray(shape=(2,)), [[1, 2]], r"^x: expected shape \(2,\), got \(1, 2\)$"),
        (NumpyArray(), [[1, 2], [3]], r"^x: rows of different lengths \(a ragged array\)$"),
        (NumpyArray(), {"a": 1}, r"^x: expected a nested list of numbers .*, got an object$"),
        (NumpyArray(), "1,2", r"^x: expected a nested list of numbers .*, got a string$"),
        (NumpyArray(), None, r"^x: expected a nested list of numbers .*, got null$"),
    ],
)
def test_bad_json_is_invalid_input_naming_field_and_problem(adapter: NumpyArray, value: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        adapter.from_json(value, "x")
    assert info.value.status_code == 422


def test_uint8_accepts_json_integers_in_range() -> None:
    # JSON integers decode as int64; an image-like uint8 API must still take them
    expected = np.array([[0, 17, 255]], dtype=np.uint8)
    decoded = NumpyArray(dtype="uint8").from_json(expected.tolist(), "pixels")
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, expected)


def test_bad_npy_bytes_is_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"^x: body is not a valid \.npy file \(") as info:
        NumpyArray().from_body(b"\x93NUMPY not really", NPY, "x")
    assert info.value.status_code == 400


def test_npy_body_with_wrong_shape_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"^x: expected shape \(N, 4\), got \(2, 3\)$"):
        NumpyArray(shape=(-1, 4)).from_body(npy_bytes(np.zeros((2, 3))), NPY, "x")


def test_npy_body_with_pickled_objects_is_refused() -> None:
    body = io.BytesIO()
    np.save(body, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadRequest, match=r"^x: body is not a valid \.npy file"):
        NumpyArray().from_body(body.getvalue(), NPY, "x")


def test_other_body_media_type_is_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"^text/plain bodies are not accepted for 'x'$"):
        NumpyArray().from_body(b"1,2", "text/plain", "x")


# -- CSV ----------------------------------------------------------------------------------


def test_csv_rows_of_numbers_become_a_checked_array() -> None:
    array = NumpyArray(np.float64, (-1, 4)).from_body(b"5.1,3.5,1.4,0.2\n6.7,3,5.2,2.3\n", "text/csv", "x")
    np.testing.assert_array_equal(array, [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    assert array.dtype == np.float64


def test_csv_of_one_column_fits_a_1d_declaration() -> None:
    array = NumpyArray(np.int64, (-1,)).from_body(b"1\n2\n3\n", "text/csv", "x")
    np.testing.assert_array_equal(array, [1, 2, 3])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"^x: empty CSV body"),
        (b"1,2,abc,4\n", r"^x: not CSV rows of numbers \(could not convert string 'abc'"),
        (b"1,2,3,4\n1,2\n", r"^x: not CSV rows of numbers \(the number of columns changed"),
    ],
)
def test_csv_that_is_not_rows_of_numbers_is_bad_request(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        NumpyArray(np.float64, (-1, 4)).from_body(body, "text/csv", "x")


def test_csv_with_the_wrong_width_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"^x: expected shape \(N, 4\), got \(1, 3\)$"):
        NumpyArray(np.float64, (-1, 4)).from_body(b"1,2,3\n", "text/csv", "x")


@pytest.mark.parametrize(
    ("value", "body"),
    [
        (np.array([0, 2, 1]), b"0\n2\n1\n"),
        (np.array([[0.5, 1.0], [2.25, -3.0]]), b"0.5,1.0\n2.25,-3.0\n"),
        (np.float64(1.5), b"1.5\n"),
    ],
)
def test_arrays_answer_as_csv_rows(value: np.ndarray, body: bytes) -> None:
    adapter = NumpyArray()
    assert adapter.response_media_type("text/csv") == "text/csv"
    assert adapter.to_body(value, "text/csv") == body


def test_an_array_of_three_dimensions_has_no_csv_form() -> None:
    with pytest.raises(ValueError, match="no CSV form"):
        NumpyArray().to_body(np.zeros((1, 2, 2)), "text/csv")


# -- batching ---------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, 1])
def test_batch_and_unbatch_along_a_dimension(dim: int) -> None:
    rng = np.random.default_rng(1)
    shapes = [(2, 3), (1, 3), (4, 3)] if dim == 0 else [(3, 2), (3, 1), (3, 4)]
    parts = [rng.standard_normal(shape) for shape in shapes]
    adapter = NumpyArray()
    batched = adapter.batch(parts, dim)
    np.testing.assert_array_equal(batched, np.concatenate(parts, axis=dim))
    sizes = [adapter.rows(part, dim) for part in parts]
    assert sizes == [part.shape[dim] for part in parts]
    assert adapter.rows(batched, dim) == sum(sizes)
    pieces = adapter.unbatch(batched * 2, sizes, dim)
    assert len(pieces) == len(parts)
    for piece, part in zip(pieces, parts, strict=True):
        np.testing.assert_array_equal(piece, part * 2)


def test_rows_of_an_array_without_that_dimension_is_one() -> None:
    assert NumpyArray().rows(np.arange(5), 1) == 1


@pytest.mark.parametrize(
    ("output", "dim", "match"),
    [
        (np.zeros((4, 2)), 0, r"^the API returned 4 rows along dimension 0 for a batch of 3$"),
        (np.zeros((3, 2)), 1, r"^the API returned 2 rows along dimension 1 for a batch of 3$"),
        (np.float64(1.0), 0, r"^the API returned no rows along dimension 0 for a batch of 3$"),
    ],
)
def test_unbatch_refuses_a_row_count_mismatch(output: Any, dim: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        NumpyArray().unbatch(output, [1, 2], dim)


# -- schema -----------------------------------------------------------------------------


def test_json_schema_fixes_the_declared_dimensions() -> None:
    adapter = NumpyArray(dtype="float32", shape=(-1, 4))
    schema = adapter.json_schema({})
    assert schema["type"] == "array"
    assert "minItems" not in schema  # any number of rows
    assert schema["items"]["minItems"] == schema["items"]["maxItems"] == 4
    assert schema["items"]["items"] == {"type": "number"}
    assert adapter.describe() in schema["description"]
    jsonschema.validate(np.zeros((5, 4)).tolist(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(np.zeros((5, 3)).tolist(), schema)


@pytest.mark.parametrize(("dtype", "item_type"), [("int32", "integer"), ("uint8", "integer"), ("bool", "boolean"), ("float64", "number")])
def test_json_schema_item_type_follows_the_dtype(dtype: str, item_type: str) -> None:
    schema = NumpyArray(dtype=dtype, shape=(2,)).json_schema({})
    assert schema["items"] == {"type": item_type}
    jsonschema.validate(np.ones(2, dtype=dtype).tolist(), schema)


def test_json_schema_without_shape_is_any_array() -> None:
    schema = NumpyArray(dtype="float32").json_schema({})
    assert schema["type"] == "array"
    jsonschema.validate(np.zeros((2, 2, 2)).tolist(), schema)


# -- selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "dtype", "shape"),
    [
        (np.ndarray, None, None),
        (NDArray[np.int64], np.dtype(np.int64), None),
        (NDArray[np.float32], np.dtype(np.float32), None),
        (Annotated[NDArray[np.float32], Shape(-1, 4)], np.dtype(np.float32), (-1, 4)),
        (Annotated[np.ndarray, DType("uint8"), Shape(None, None, 3)], np.dtype(np.uint8), (-1, -1, 3)),
    ],
)
def test_adapter_for_numpy_hints(hint: Any, dtype: Any, shape: Any) -> None:
    adapter = adapter_for(hint)
    assert isinstance(adapter, NumpyArray)
    assert adapter.dtype == dtype
    assert adapter.shape == shape
    assert adapter.batchable


def test_shape_marker_refuses_bad_dims() -> None:
    with pytest.raises(TypeError, match=r"Shape takes ints >= 0, or -1/None for any size; got -2"):
        Shape(-2)
    with pytest.raises(TypeError, match=r"got True"):
        Shape(True)  # type: ignore[arg-type]
