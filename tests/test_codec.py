"""Request bodies -> API keyword arguments, results -> response bodies (``runtime._codec``)."""

import io
from typing import Annotated, Any

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from modelbundle import Service, Shape, api
from modelbundle.errors import BadRequest, InvalidInput, UnsupportedMediaType
from modelbundle.runtime._codec import decode_request, encode_result

NPY = "application/x-npy"
JSON = "application/json"


class Codec(Service):
    @api
    def rows(self, x: Annotated[NDArray[np.float32], Shape(-1, 2)]) -> np.ndarray:
        return x

    @api
    def shout(self, text: str) -> str:
        return text.upper()

    @api
    def combine(self, a: int, weights: list[float], scale: float = 1.0) -> dict:  # type: ignore[type-arg]
        return {}

    @api
    def settings(self, config: dict) -> dict:  # type: ignore[type-arg]
        return config


ROWS, SHOUT, COMBINE, SETTINGS = (Codec.__apis__[name] for name in ("rows", "shout", "combine", "settings"))
MATRIX = np.arange(6, dtype=np.float32).reshape(3, 2)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# -- one-parameter APIs -----------------------------------------------------------------


@pytest.mark.parametrize("named", [False, True], ids=["bare", "named"])
def test_one_param_api_takes_the_bare_value_or_an_object_naming_it(named: bool) -> None:
    value = MATRIX.tolist()
    body = orjson.dumps({"x": value} if named else value)
    kwargs = decode_request(ROWS, body, JSON)
    assert list(kwargs) == ["x"]
    np.testing.assert_array_equal(kwargs["x"], MATRIX)
    assert kwargs["x"].dtype == np.float32


def test_object_that_is_not_just_the_parameter_name_is_the_bare_value() -> None:
    # for a dict API, {"config": ...} names the parameter, anything else is the dict itself
    assert decode_request(SETTINGS, b'{"config": {"depth": 3}}', JSON) == {"config": {"depth": 3}}
    assert decode_request(SETTINGS, b'{"depth": 3}', JSON) == {"config": {"depth": 3}}
    assert decode_request(SETTINGS, b'{"config": 1, "depth": 3}', JSON) == {"config": {"config": 1, "depth": 3}}


def test_one_param_validation_error_names_the_parameter() -> None:
    with pytest.raises(InvalidInput, match=r"^x: expected shape \(N, 2\), got \(1, 3\)$"):
        decode_request(ROWS, b"[[1, 2, 3]]", JSON)


def test_npy_body() -> None:
    kwargs = decode_request(ROWS, npy(MATRIX), NPY)
    np.testing.assert_array_equal(kwargs["x"], MATRIX)


def test_text_plain_body() -> None:
    assert decode_request(SHOUT, "héllo".encode(), "text/plain; charset=utf-8") == {"text": "héllo"}


@pytest.mark.parametrize(
    "content_type",
    [JSON, "application/json; charset=utf-8", "Application/JSON", "", "application/vnd.api+json"],
)
def test_json_like_content_types_are_parsed_as_json(content_type: str) -> None:
    kwargs = decode_request(ROWS, b"[[1, 2]]", content_type)
    np.testing.assert_array_equal(kwargs["x"], np.array([[1, 2]], dtype=np.float32))


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"])
def test_content_types_a_browser_sends_cross_origin_are_not_parsed_as_json(content_type: str) -> None:
    # a web page may POST these to localhost without a CORS preflight: they must not reach the model
    with pytest.raises(UnsupportedMediaType, match=r"^rows does not accept .* bodies; send application/json"):
        decode_request(ROWS, b"[[1, 2]]", content_type)


def test_a_form_body_from_curl_gets_a_hint() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"add -H 'Content-Type: application/json'"):
        decode_request(ROWS, b'{"x": [[1, 2]]}', "application/x-www-form-urlencoded")


# -- several parameters -----------------------------------------------------------------


def test_multi_param_object_decodes_each_field_and_leaves_defaults_out() -> None:
    assert decode_request(COMBINE, b'{"a": 2, "weights": [1, 0.5]}', JSON) == {"a": 2, "weights": [1.0, 0.5]}
    assert decode_request(COMBINE, b'{"a": 2, "weights": [], "scale": 3}', JSON) == {"a": 2, "weights": [], "scale": 3.0}


def test_multi_param_missing_field_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"^missing field 'weights' \(list\[float\]\)$") as info:
        decode_request(COMBINE, b'{"a": 2}', JSON)
    assert info.value.status_code == 422


def test_multi_param_unknown_field_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"^unknown field 'wieghts'; combine takes fields 'a', 'weights', 'scale'$"):
        decode_request(COMBINE, b'{"a": 2, "wieghts": [1]}', JSON)


def test_multi_param_field_of_the_wrong_type_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"^weights: 1: Input should be a valid number"):
        decode_request(COMBINE, b'{"a": 2, "weights": [1, "x"]}', JSON)


@pytest.mark.parametrize("body", [b"[1, 2]", b"3", b'"a"'])
def test_multi_param_body_must_be_an_object(body: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"^expected a JSON object with fields 'a', 'weights', 'scale'$"):
        decode_request(COMBINE, body, JSON)


# -- undecodable bodies -----------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[1, 2", b"{'a': 1}", b"nan-ish"])
def test_malformed_json_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^malformed JSON: ") as info:
        decode_request(COMBINE, body, JSON)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"a": 1, "weights": [NaN], "scale": 1}', "NaN at line 1 column 22"),
        (b'{"a": 1, "weights": [1, -Infinity]}', "-Infinity at line 1 column 25"),
        ('{"a": 1, "\u00e9": 2, "weights": [Infinity]}'.encode(), "Infinity at line 1 column 30"),
        (b'{"a": 1,\n "weights": [NaN]}', "NaN at line 2 column 14"),
    ],
)
def test_nan_and_infinity_literals_are_invalid_input_naming_where(body: bytes, where: str) -> None:
    # Python's json.dumps writes them; the answer is the one CSV, .npy and tensors get (422), not "malformed"
    with pytest.raises(InvalidInput) as info:
        decode_request(COMBINE, body, JSON)
    assert info.value.message == (
        f"{where} is not accepted; send finite numbers (JSON has no NaN or infinity, and no other encoding takes them either)"
    )


def test_empty_body_is_bad_request_naming_the_fields() -> None:
    with pytest.raises(BadRequest, match=r"^empty body; combine expects JSON with fields 'a', 'weights', 'scale'$"):
        decode_request(COMBINE, b"", JSON)


@pytest.mark.parametrize(
    ("method", "content_type", "accepted"),
    [
        (ROWS, "text/plain", "application/json or application/x-npy or text/csv"),
        (SHOUT, "image/png", "application/json or text/plain"),
        (COMBINE, NPY, "application/json"),
        (COMBINE, "text/plain", "application/json"),  # several parameters take only JSON
    ],
)
def test_unsupported_media_type_lists_what_is_accepted(method: Any, content_type: str, accepted: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=rf"^{method.name} does not accept {content_type} bodies; send {accepted}$") as info:
        decode_request(method, b"1", content_type)
    assert info.value.status_code == 415


# -- responses --------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["", "*/*", JSON, "text/html"])
def test_array_result_is_json_by_default(accept: str) -> None:
    body, media_type = encode_result(ROWS.output, MATRIX.T, accept)
    assert media_type == b"application/json"
    assert orjson.loads(body) == MATRIX.T.tolist()


@pytest.mark.parametrize("accept", [NPY, f"{NPY}, {JSON};q=0.5"])
def test_array_result_honours_accept_npy(accept: str) -> None:
    body, media_type = encode_result(ROWS.output, MATRIX, accept)
    assert media_type == NPY.encode()
    result = np.load(io.BytesIO(body))
    np.testing.assert_array_equal(result, MATRIX)
    assert result.dtype == MATRIX.dtype


def test_scalar_array_result_is_a_json_number() -> None:
    body, _ = encode_result(ROWS.output, MATRIX.sum(), "")
    assert orjson.loads(body) == float(MATRIX.sum())


def test_text_result_is_plain_unless_json_is_accepted() -> None:
    assert encode_result(SHOUT.output, "HI é", "") == ("HI é".encode(), b"text/plain")
    assert encode_result(SHOUT.output, "HI é", JSON) == (orjson.dumps("HI é"), b"application/json")
