"""Bad requests get the right status and a JSON error that names the problem; every
response carries X-Request-ID; a model exception is a 500 and the server carries on."""

from __future__ import annotations

import json

import pytest

from fixtures.services.typed import Typed
from modelbundle.runtime import ServeConfig

MAX_BODY = 1000
BIG_BODY = json.dumps([[1.0, 2.0, 3.0]] * 2000).encode()  # ~34 kB


def _chunked(body: bytes):
    # a generator body: httpx sends it chunked, with no Content-Length
    for start in range(0, len(body), 512):
        yield body[start : start + 512]


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Typed, ServeConfig(max_body_size=MAX_BODY, log_level="critical")) as server:
        yield server


JSON = {"content-type": "application/json"}

BAD_REQUESTS = [
    pytest.param("POST", "/rows", {"content": b'{"x": [[1, 2', "headers": JSON}, 400, "bad_request", ["malformed JSON"], id="malformed-json"),
    pytest.param("POST", "/rows", {"content": b"", "headers": JSON}, 400, "bad_request", ["empty body", "array of float64, shape (N, 3)", '{"x": ...}'], id="empty-body"),
    pytest.param("POST", "/rows", {"json": [["a", "b", "c"]]}, 422, "invalid_input", ["x:", "expected numbers", "str"], id="strings"),
    pytest.param("POST", "/rows", {"json": [[1, 2]]}, 422, "invalid_input", ["x:", "expected shape (N, 3)", "got (1, 2)"], id="shape"),
    pytest.param("POST", "/rows", {"json": [[1, 2], [3]]}, 422, "invalid_input", ["x:", "ragged"], id="ragged"),
    pytest.param("POST", "/scale", {"json": {"x": [[1, 2, 3]]}}, 422, "invalid_input", ["missing field 'factor'"], id="missing-field"),
    pytest.param("POST", "/scale", {"json": {"x": [[1, 2, 3]], "factor": 2, "bias": 1}}, 422, "invalid_input", ["unknown field 'bias'"], id="unknown-field"),
    pytest.param("POST", "/scale", {"json": {"x": [[1, 2, 3]], "factor": "big"}}, 422, "invalid_input", ["factor"], id="bad-scalar"),
    pytest.param("POST", "/rows", {"content": BIG_BODY, "headers": JSON}, 413, "payload_too_large", [f"body of {len(BIG_BODY)} bytes", f"limit of {MAX_BODY} bytes"], id="too-large"),
    pytest.param("POST", "/rows", {"content": _chunked, "headers": JSON}, 413, "payload_too_large", [f"limit of {MAX_BODY} bytes"], id="too-large-chunked"),
    pytest.param("POST", "/rows", {"content": b"1,2,3", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type", ["text/plain", "application/json", "application/x-npy"], id="content-type"),
    pytest.param("GET", "/nowhere", {}, 404, "not_found", ["/nowhere", "POST /rows", "POST /scale"], id="unknown-route"),
    pytest.param("POST", "/nowhere", {"json": 1}, 404, "not_found", ["/nowhere"], id="unknown-api"),
    pytest.param("GET", "/rows", {}, 405, "method_not_allowed", ["GET", "/rows"], id="get-on-api"),
    pytest.param("POST", "/livez", {}, 405, "method_not_allowed", ["POST", "/livez"], id="post-on-livez"),
    pytest.param("POST", "/fail", {"json": 13}, 500, "model_error", ["fail raised RuntimeError: unlucky number"], id="model-raises"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "error_type", "fragments"), BAD_REQUESTS)
def test_a_bad_request_gets_a_json_error_naming_the_problem(server, method, path, kwargs, status, error_type, fragments):
    if callable(kwargs.get("content")):
        kwargs = {**kwargs, "content": kwargs["content"](BIG_BODY)}
    with server.client() as client:
        response = client.request(method, path, **kwargs)

        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["type"] == error_type
        for fragment in fragments:
            assert fragment in error["message"]
        assert error["request_id"] == response.headers["x-request-id"]

        # the same connection, and the server, still serve
        after = client.post("/rows", json=[[1, 2, 3]])
        assert after.status_code == 200
        assert after.json() == [6.0]


def test_the_model_error_message_does_not_leak_into_the_next_answer(server):
    assert server.post("/fail", json=13).status_code == 500
    response = server.post("/fail", json=7)
    assert response.status_code == 200
    assert response.json() == 7


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/livez", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/docs", {}),
        ("GET", "/missing", {}),
        ("POST", "/rows", {"json": [[1, 2, 3]]}),
        ("POST", "/rows", {"json": "nope"}),
    ],
)
def test_every_response_carries_a_request_id_and_a_given_one_is_echoed(server, method, path, kwargs):
    with server.client() as client:
        first = client.request(method, path, **kwargs)
        second = client.request(method, path, **kwargs)
        given = client.request(method, path, headers={"X-Request-ID": "client-chosen.id_42"}, **kwargs)
        unsafe = client.request(method, path, headers={"X-Request-ID": "has spaces in it"}, **kwargs)

    assert first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert given.headers["x-request-id"] == "client-chosen.id_42"
    # an id that is unsafe to echo is replaced, not reflected
    assert unsafe.headers["x-request-id"] not in ("", "has spaces in it")
    if given.status_code >= 400:
        assert given.json()["error"]["request_id"] == "client-chosen.id_42"
