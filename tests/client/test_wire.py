"""The client's wire codec against a real server: what ``encode_request`` sends, the server's own
decoder reads back as the same values; what the server answers, ``decode_response`` turns into the
API's return value or into the exception the server raised."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fixtures.services.kinds import Answer, Kinds, Query
from modelbundle.client import decode_response, encode_request
from modelbundle.client._wire import ACCEPT
from modelbundle.errors import (
    InvalidInput,
    ModelError,
    NotFound,
    Overloaded,
    RequestError,
    UnsupportedMediaType,
)
from modelbundle.runtime import ServeConfig
from modelbundle.runtime._codec import decode_request


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Kinds, ServeConfig(log_level="critical")) as server:
        yield server


def call(server, api: str, **arguments):
    method = Kinds.__apis__[api]
    body, content_type = encode_request({p.name: p.adapter for p in method.params}, arguments)
    response = server.post(method.route, content=body, headers={"content-type": content_type, "accept": ACCEPT})
    return decode_response(
        response.status_code, response.headers.get("content-type", ""), response.content, method.output, response.headers
    )


def test_each_adapter_kind_round_trips_through_a_real_server(server):
    rows = np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float32)
    scaled = call(server, "scale", x=rows, factor=3.0)
    assert scaled.dtype == np.float32 and np.array_equal(scaled, rows * 3)
    assert np.array_equal(call(server, "scale", x=rows), rows * 2)  # the default is the server's

    image = Image.new("RGB", (3, 2))
    image.putpixel((0, 0), (255, 10, 20))
    flipped = call(server, "flip", image=image)
    assert flipped.size == (3, 2) and flipped.getpixel((2, 0)) == (255, 10, 20)

    frame = pd.DataFrame({"a": [1, 2], "b": [10.5, 20.5]})
    assert call(server, "totals", frame=frame)["total"].tolist() == [11.5, 22.5]

    data = bytes(range(256))
    assert call(server, "reverse", data=data) == data[::-1]
    assert call(server, "shout", text="héllo") == "HÉLLO"

    answer = call(server, "search", query=Query(text="a b c d", top_k=2), scale=0.5)
    assert answer == Answer(words=["a", "b"], scale=0.5)


def test_the_server_decodes_what_the_client_encodes_to_the_same_values():
    method = Kinds.__apis__["search"]
    # a model whose field is named like the parameter stays the keyed form, never a bare body
    body, content_type = encode_request({p.name: p.adapter for p in method.params}, {"query": Query(text="x y")})
    assert decode_request(method, body, content_type) == {"query": Query(text="x y", top_k=3)}


def test_errors_come_back_as_the_exceptions_the_server_raised(server):
    with pytest.raises(ModelError) as failed:
        call(server, "fail", n=13)
    assert failed.value.status_code == 500 and failed.value.request_id
    with pytest.raises(InvalidInput, match="n must not be negative, got -1"):
        call(server, "fail", n=-1)
    with pytest.raises(InvalidInput, match="expected shape"):
        call(server, "scale", x=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(NotFound):
        _decoded(server.post("/nowhere", json={}))
    response = server.post("/fail", content=b"n=1", headers={"content-type": "application/x-www-form-urlencoded"})
    with pytest.raises(UnsupportedMediaType, match="does not accept"):
        _decoded(response)


def test_a_call_the_api_cannot_take_fails_before_anything_is_sent():
    inputs = {p.name: p.adapter for p in Kinds.__apis__["scale"].params}
    with pytest.raises(TypeError, match="unexpected argument 'y'; the API takes x, factor"):
        encode_request(inputs, {"y": 1})
    # orjson would send NaN as null; the answer is the server's own for NaN in any encoding
    with pytest.raises(InvalidInput, match="NaN at \\[0, 1\\] is not accepted"):
        encode_request(inputs, {"x": np.array([[1.0, np.nan]])})


def test_an_error_body_that_is_not_ours_keeps_its_status():
    error = decode_error(502, "text/html", b"<h1>Bad Gateway</h1>")
    assert type(error) is RequestError and error.status_code == 502 and "Bad Gateway" in error.message
    retry = decode_error(503, "application/json", b'{"error": {"type": "overloaded", "message": "busy"}}', {"Retry-After": "2", "Content-Length": "9"})
    assert isinstance(retry, Overloaded) and retry.message == "busy" and retry.headers == {"Retry-After": "2"}


def decode_error(status, content_type, body, headers=None) -> RequestError:
    with pytest.raises(RequestError) as raised:
        decode_response(status, content_type, body, Kinds.__apis__["fail"].output, headers)
    return raised.value


def _decoded(response: httpx.Response):
    content_type = response.headers.get("content-type", "")
    return decode_response(response.status_code, content_type, response.content, Kinds.__apis__["fail"].output, response.headers)

