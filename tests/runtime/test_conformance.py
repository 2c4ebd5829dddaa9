"""HTTP conformance (issue 16): every 405 names the allowed methods in an Allow header, and the
OpenAPI document admits exactly the request bodies the server accepts."""

from __future__ import annotations

import io
import json

import jsonschema
import numpy as np
import pytest

from fixtures.services.features import Features
from modelbundle.runtime import ServeConfig


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Features, ServeConfig(log_level="critical")) as server:
        yield server


# -- 405 and Allow ------------------------------------------------------------------------------------------
WRONG_METHODS = [
    ("GET", "/score", "POST"),
    ("PUT", "/score", "POST"),
    ("POST", "/livez", "GET, HEAD"),
    ("DELETE", "/openapi.json", "GET, HEAD"),
    ("POST", "/docs", "GET, HEAD"),
    ("POST", "/docs/static/swagger-ui.css", "GET, HEAD"),
    ("POST", "/v2", "GET, HEAD"),
    ("POST", "/v2/health/live", "GET, HEAD"),
    ("GET", "/v2/models/score/infer", "POST"),
    ("GET", "/v2/models/score/versions/1/infer", "POST"),
    ("DELETE", "/v2/models/score", "GET, HEAD"),
]


@pytest.mark.parametrize(("method", "path", "allow"), WRONG_METHODS)
def test_a_405_carries_allow_and_names_the_methods(server, method, path, allow):
    response = _request(server, method, path)

    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    error = response.json()["error"]
    message = error["message"] if isinstance(error, dict) else error  # native, or the protocol's plain string
    assert message == f"{method} is not allowed on {path}; it takes {allow}"


@pytest.mark.parametrize(("method", "path", "allow"), WRONG_METHODS)
def test_every_method_allow_names_is_allowed(server, method, path, allow):
    for allowed in allow.split(", "):
        response = _request(server, allowed, path)
        assert response.status_code != 405, (allowed, path, response.text)


def _request(server, method: str, path: str):
    with server.client() as client:
        return client.request(method, path)


# -- the OpenAPI document admits what the server accepts ------------------------------------------------------
def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


JSON_BODIES = [[], [[1, 2, 3, 4]], [[1, 2, 3, 4], [5, 6, 7, 8]], [[1, 2, 3]], [1, 2, 3, 4], {"x": []}, {"x": [[1, 2, 3, 4]]}, {"y": [[1, 2, 3, 4]]}, "rows"]
CSV_BODIES = [b"", b" \n", b"1,2,3,4\n", b"1,2,3,4\n5,6,7,8\n"]
NPY_BODIES = [b"", _npy(np.ones((1, 4))), _npy(np.ones((2, 4)))]


def _cases():
    for api in ("score", "embed"):
        for body in JSON_BODIES:
            yield pytest.param(api, "application/json", json.dumps(body).encode(), id=f"{api}-json-{json.dumps(body)}")
        for body in CSV_BODIES:
            yield pytest.param(api, "text/csv", body, id=f"{api}-csv-{body!r}")
        for body in NPY_BODIES:
            yield pytest.param(api, "application/x-npy", body, id=f"{api}-npy-{len(body)}-bytes")


@pytest.mark.parametrize(("api", "media_type", "body"), list(_cases()))
def test_the_schema_admits_a_body_exactly_when_the_server_accepts_it(server, api, media_type, body):
    document = server.get("/openapi.json").json()
    schema = document["paths"][f"/{api}"]["post"]["requestBody"]["content"][media_type]["schema"]
    # JSON bodies are checked as JSON; others as the string the schema describes (latin-1 keeps every byte)
    instance = json.loads(body) if media_type == "application/json" else body.decode("latin-1")

    admitted = jsonschema.Draft202012Validator(schema).is_valid(instance)
    response = server.post(f"/{api}", content=body, headers={"content-type": media_type})

    assert response.status_code in (200, 400, 422), response.text
    assert admitted == (response.status_code == 200), (schema, response.status_code, response.text)
