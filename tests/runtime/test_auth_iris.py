"""API keys on every kind of route of the iris example, served by ``bundle serve`` in a child process.

The keys come from MODELBUNDLE_API_KEYS, as in a container; the server runs with the
access log on and at debug level, and its whole output is then searched for the keys.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

IRIS_EXAMPLE = Path(__file__).parents[2] / "examples" / "iris"
GOOD = "iris-key-0f3a9c"
OTHER = "second-key-77d1"
WRONG = "iris-key-0f3a9d"  # one character off the right one
ROW = [[5.1, 3.5, 1.4, 0.2]]


@pytest.fixture(scope="module")
def iris_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("iris-auth")
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_EXAMPLE / name, project / name)
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
    return project


@pytest.fixture(scope="module")
def server(iris_project: Path, serve_in_subprocess: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    jobs_dir = tmp_path_factory.mktemp("iris-auth-jobs")
    with serve_in_subprocess(
        f"{iris_project / 'service.py'}:IrisClassifier",
        "--sagemaker", "--access-log", "--log-level", "debug", "--jobs-dir", str(jobs_dir),
        env={"MODELBUNDLE_API_KEYS": f"{GOOD},{OTHER}"},
    ) as running:
        yield running


def oip_body() -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW[0]}]}


# (method, path, JSON body) of each kind of route
ROUTES = [
    ("POST", "/predict", {"x": ROW}),
    ("POST", "/v2/models/predict/infer", oip_body()),
    ("GET", "/v2/models/predict", None),
    ("GET", "/v2", None),
    ("POST", "/invocations", {"x": ROW}),
    ("POST", "/predict/jobs", {"x": ROW}),
    ("GET", "/predict/jobs", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_without_a_key_every_route_is_401_with_www_authenticate(server: Any, method: str, path: str, body: Any) -> None:
    response = httpx.request(method, server.url + path, json=body, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "unauthorized"
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_with_a_wrong_key_every_route_is_401(server: Any, method: str, path: str, body: Any) -> None:
    for headers in ({"Authorization": f"Bearer {WRONG}"}, {"X-API-Key": WRONG}, {"Authorization": f"Basic {GOOD}"}):
        response = httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 401, (headers, response.text)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_with_a_right_key_every_route_answers(server: Any, method: str, path: str, body: Any) -> None:
    for headers in ({"Authorization": f"Bearer {GOOD}"}, {"authorization": f"bearer {OTHER}"}, {"X-API-Key": GOOD}):
        response = httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)
        assert response.status_code in (200, 202), (headers, response.text)


def test_the_answers_behind_the_key_are_the_models(server: Any) -> None:
    headers = {"Authorization": f"Bearer {GOOD}"}
    assert server.post("/predict", json={"x": ROW}, headers=headers).json() == [0]  # the first iris row is a setosa
    infer = server.post("/v2/models/predict/infer", json=oip_body(), headers=headers).json()
    assert infer["outputs"][0]["data"] == [0]
    job = server.post("/predict/jobs", json={"x": ROW}, headers=headers).json()
    for _ in range(600):  # bounded: the job runs on the batcher in well under a minute
        document = server.get(f"/predict/jobs/{job['id']}", headers=headers).json()
        if document["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert server.get(f"/predict/jobs/{job['id']}/result", headers=headers).json() == [0]
    assert server.get(f"/predict/jobs/{job['id']}/result").status_code == 401


def test_probes_metrics_and_docs_stay_open(server: Any) -> None:
    for path in ("/livez", "/readyz", "/ping", "/metrics", "/docs", "/openapi.json"):
        assert server.get(path).status_code == 200, path


def test_keys_never_appear_in_the_servers_output(server: Any) -> None:
    for key in (GOOD, WRONG):
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            server.post("/predict", json={"x": ROW}, headers=headers)
    output = server.stderr
    assert "POST /predict" in output  # the access log was on, so requests were logged
    for key in (GOOD, OTHER, WRONG):
        assert key not in output
