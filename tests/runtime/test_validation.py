"""One validation path for every codec (issue 16): the same values get the same answer whether
they come as JSON, CSV, .npy or an Open Inference Protocol tensor (JSON or binary), and a
client's mistake is a 4xx, never the model's 500."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from fixtures.services.features import Features
from modelbundle.runtime import ServeConfig

HINT = "send finite numbers (JSON has no NaN or infinity, and no other encoding takes them either)"


@pytest.fixture(scope="module", params=[True, False], ids=["batching", "no-batching"])
def server(request, serve_in_thread):
    with serve_in_thread(Features, ServeConfig(batching=request.param, log_level="critical")) as server:
        yield server


# -- one request per encoding: (path, httpx kwargs) for rows of floats --------------------------------
def as_json(api: str, rows: np.ndarray) -> tuple[str, dict]:
    # Python's json writes NaN and Infinity, as a client's json.dumps would; httpx's json= refuses them
    return f"/{api}", {"content": json.dumps(rows.tolist()).encode(), "headers": {"content-type": "application/json"}}


def as_csv(api: str, rows: np.ndarray) -> tuple[str, dict]:
    text = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
    return f"/{api}", {"content": text.encode(), "headers": {"content-type": "text/csv"}}


def as_npy(api: str, rows: np.ndarray) -> tuple[str, dict]:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return f"/{api}", {"content": buffer.getvalue(), "headers": {"content-type": "application/x-npy"}}


def as_oip_json(api: str, rows: np.ndarray) -> tuple[str, dict]:
    tensor = {"name": "x", "shape": list(rows.shape), "datatype": "FP32", "data": rows.reshape(-1).tolist()}
    body = json.dumps({"inputs": [tensor]}).encode()
    return f"/v2/models/{api}/infer", {"content": body, "headers": {"content-type": "application/json"}}


def as_oip_binary(api: str, rows: np.ndarray) -> tuple[str, dict]:
    chunk = rows.astype("<f4").tobytes()
    tensor = {"name": "x", "shape": list(rows.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(chunk)}}
    header = json.dumps({"inputs": [tensor]}).encode()
    headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))}
    return f"/v2/models/{api}/infer", {"content": header + chunk, "headers": headers}


def error_of(response) -> tuple[int, str]:
    """The status and message of an error, native ({"error": {...}}) or protocol ({"error": "..."})."""
    error = response.json()["error"]
    if isinstance(error, dict):
        assert error["type"] == {400: "bad_request", 422: "invalid_input"}[response.status_code]
        return response.status_code, error["message"]
    return response.status_code, error


def rows_with(value: float) -> np.ndarray:
    rows = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    rows[1, 2] = value
    return rows


def _json_position(path_and_kwargs: tuple[str, dict], literal: str) -> str:
    column = path_and_kwargs[1]["content"].decode().index(literal) + 1
    return f"line 1 column {column}"


# -- NaN, infinity, and floats that overflow float32 -------------------------------------------------------
@pytest.mark.parametrize(("value", "name", "literal"), [(np.nan, "NaN", "NaN"), (np.inf, "infinity", "Infinity"), (-np.inf, "-infinity", "-Infinity")])
@pytest.mark.parametrize("encode", [as_json, as_csv, as_npy, as_oip_json, as_oip_binary])
def test_nan_and_infinity_are_refused_in_every_encoding(server, encode, value, name, literal):
    request = encode("score", rows_with(value))

    response = server.post(request[0], **request[1])

    if encode in (as_json, as_oip_json):  # the text never parses: the JSON literal and where it is
        expected = f"{literal} at {_json_position(request, literal)} is not accepted; {HINT}"
    else:
        field = "input 'x'" if encode is as_oip_binary else "x"
        expected = f"{field}: {name} at [1, 2] is not accepted; {HINT}"
    assert error_of(response) == (422, expected)


@pytest.mark.parametrize("encode", [as_json, as_csv, as_npy, as_oip_json])
def test_a_float_too_big_for_float32_is_refused_rather_than_sent_as_infinity(server, encode):
    request = encode("score", rows_with(1e308))

    response = server.post(request[0], **request[1])

    field = "input 'x'" if encode is as_oip_json else "x"
    assert error_of(response) == (422, f"{field}: 1e+308 at [1, 2] does not fit float32 (largest 3.4028235e+38)")


@pytest.mark.parametrize("encode", [as_json, as_csv, as_npy, as_oip_json, as_oip_binary])
def test_finite_rows_get_the_same_answer_in_every_encoding(server, encode):
    rows = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 3e38, 0.0]])
    request = encode("score", rows)

    response = server.post(request[0], **request[1])

    assert response.status_code == 200, response.text
    body = response.json()
    answer = body["outputs"][0]["data"] if "outputs" in body else body
    assert np.array_equal(np.asarray(answer, dtype=np.float32), rows.astype(np.float32).sum(axis=1))


# -- no rows ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encode", [as_json, as_npy, as_oip_json, as_oip_binary])
def test_no_rows_get_the_empty_answer_without_calling_the_model_in_every_encoding(server, encode):
    request = encode("score", np.empty((0, 4)))

    response = server.post(request[0], **request[1])

    assert response.status_code == 200, response.text
    body = response.json()
    if "outputs" in body:
        assert body["outputs"][0] == {"name": "output", "datatype": "FP32", "shape": [0], "data": []}
    else:
        assert body == []


@pytest.mark.parametrize("encode", [as_json, as_npy, as_oip_json, as_oip_binary])
def test_no_rows_for_an_output_without_an_empty_value_are_a_422_in_every_encoding(server, encode):
    request = encode("embed", np.empty((0, 4)))

    response = server.post(request[0], **request[1])

    assert error_of(response) == (
        422,
        "embed got no rows (an empty batch along dimension 0), and its output (array of any dtype, any shape) "
        "has no empty value; send at least one row",
    )


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/csv", "x: empty CSV body; send rows of comma-separated numbers"),
        ("application/x-npy", "x: empty .npy body; send an array saved with numpy.save"),
        ("application/json", "empty body; score expects JSON: array of float32, shape (N, 4), bare or as {\"x\": ...}"),
    ],
)
def test_an_empty_body_is_a_400_in_every_encoding(server, content_type, message):
    # no body is no input at all (a CSV cannot say "no rows"): the client forgot it
    response = server.post("/score", content=b"", headers={"content-type": content_type})

    assert error_of(response) == (400, message)


# -- shapes no array can have ------------------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([1] * 65, "input 'x': 'shape' has 65 dimensions, more than the 64 an array may have"),
        ([0, 2**63], "input 'x': shape [0, 9223372036854775808] is too large for an array"),
        ([2**62, 2**62, 0], "input 'x': shape [4611686018427387904, 4611686018427387904, 0] is too large for an array"),
    ],
    ids=["65-dims", "2**63", "product-overflows"],
)
def test_an_infer_shape_no_array_can_have_is_a_400(server, shape, message, binary):
    count = int(np.prod(np.array(shape, dtype=object)))
    if binary:
        chunk = np.ones(count, dtype="<f4").tobytes()
        tensor = {"name": "x", "shape": shape, "datatype": "FP32", "parameters": {"binary_data_size": len(chunk)}}
        header = json.dumps({"inputs": [tensor]}).encode()
        headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))}
        response = server.post("/v2/models/score/infer", content=header + chunk, headers=headers)
    else:
        tensor = {"name": "x", "shape": shape, "datatype": "FP32", "data": [1.0] * count}
        response = server.post("/v2/models/score/infer", json={"inputs": [tensor]})

    assert error_of(response) == (400, message)
    assert server.post("/score", json=[[1, 2, 3, 4]]).json() == [10.0]  # and the server carries on
