"""The Open Inference Protocol (KServe V2) on a real server: health, metadata, infer in JSON and
binary, protocol errors as ``{"error": ...}``, and infer requests batched together with native ones."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import httpx
import numpy as np
import pytest

from fixtures.services.tensors import DATATYPES, HOLD, Tensors
from modelbundle.runtime import ServeConfig, create_app

from .test_oip_codec import SAMPLES


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Tensors, ServeConfig(log_level="critical")) as server:
        yield server


def infer_body(array, datatype: str, name: str = "x", **extra) -> dict:
    data = [item.decode() for item in array.reshape(-1)] if datatype == "BYTES" else array.reshape(-1).tolist()
    return {"inputs": [{"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}], **extra}


def binary_request(array, datatype: str, name: str = "x", **extra) -> tuple[bytes, dict[str, str]]:
    if datatype == "BYTES":
        chunk = b"".join(struct.pack("<I", len(item)) + item for item in array.reshape(-1))
    else:
        chunk = array.astype(array.dtype.newbyteorder("<")).tobytes()
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype, "parameters": {"binary_data_size": len(chunk)}}
    header = json.dumps({"inputs": [tensor], **extra}).encode()
    headers = {"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"}
    return header + chunk, headers


def read_binary_output(response) -> tuple[dict, bytes]:
    length = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:length]), response.content[length:]


# -- health and metadata ----------------------------------------------------------------------
def test_server_metadata_names_the_binary_extension(server):
    for path in ("/v2", "/v2/"):
        response = server.get(path)
        assert response.status_code == 200
        metadata = response.json()
        assert metadata["name"] == "modelbundle"
        assert metadata["version"]
        assert "binary_tensor_data" in metadata["extensions"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/predict/ready", {"name": "predict", "ready": True}),
        ("/v2/models/predict/versions/1/ready", {"name": "predict", "ready": True}),
    ],
)
def test_health_endpoints(server, path, body):
    response = server.get(path)

    assert response.status_code == 200
    assert response.json() == body
    assert response.headers["x-request-id"]


def test_model_metadata_has_datatypes_and_shapes_with_minus_one(server):
    expected = {
        "name": "add",
        "versions": ["1"],
        "platform": "modelbundle",
        "inputs": [{"name": "a", "datatype": "INT32", "shape": [-1, 3]}, {"name": "b", "datatype": "INT32", "shape": [-1, 3]}],
        "outputs": [{"name": "output", "datatype": "INT32", "shape": [-1]}],
    }
    assert server.get("/v2/models/add").json() == expected
    assert server.get("/v2/models/add/versions/1").json() == expected
    predict = server.get("/v2/models/predict").json()
    assert predict["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_each_datatype_is_a_model_of_its_datatype(server, datatype):
    metadata = server.get(f"/v2/models/echo_{datatype.lower()}").json()

    assert metadata["inputs"] == [{"name": "x", "datatype": datatype, "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": datatype, "shape": [-1]}]


# -- infer ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_each_datatype_round_trips_in_json(server, datatype):
    sample = SAMPLES[datatype]
    body = infer_body(sample, datatype, id="round-trip")
    if datatype == "BYTES":  # JSON carries BYTES as UTF-8 strings
        body["outputs"] = [{"name": "output"}]

    response = server.post(f"/v2/models/echo_{datatype.lower()}/infer", json=body)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    result = response.json()
    assert (result["model_name"], result["model_version"], result["id"]) == (f"echo_{datatype.lower()}", "1", "round-trip")
    (output,) = result["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output", datatype, list(sample.shape))
    if datatype == "BYTES":
        assert output["data"] == [item.decode() for item in sample.reshape(-1)]
    else:
        assert np.asarray(output["data"], dtype=sample.dtype).tolist() == sample.reshape(-1).tolist()


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_each_datatype_round_trips_in_binary(server, datatype):
    sample = SAMPLES[datatype]
    content, headers = binary_request(sample, datatype, outputs=[{"name": "output", "parameters": {"binary_data": True}}])

    response = server.post(f"/v2/models/echo_{datatype.lower()}/infer", content=content, headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    header, chunk = read_binary_output(response)
    (output,) = header["outputs"]
    assert (output["datatype"], output["shape"]) == (datatype, list(sample.shape))
    assert output["parameters"]["binary_data_size"] == len(chunk)
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(chunk):
            (length,) = struct.unpack_from("<I", chunk, offset)
            items.append(chunk[offset + 4 : offset + 4 + length])
            offset += 4 + length
        assert items == sample.reshape(-1).tolist()
    else:
        assert np.frombuffer(chunk, dtype=sample.dtype.newbyteorder("<")).tolist() == sample.reshape(-1).tolist()


def test_binary_data_output_makes_every_output_binary_unless_one_says_otherwise(server):
    body = infer_body(np.array([[1, 2, 3]]), "INT32", name="a")
    body["inputs"].append({**body["inputs"][0], "name": "b"})

    binary = server.post("/v2/models/add/infer", json={**body, "parameters": {"binary_data_output": True}})
    _, chunk = read_binary_output(binary)
    assert np.frombuffer(chunk, dtype="<i4").tolist() == [2, 4, 6]

    as_json = server.post(
        "/v2/models/add/infer",
        json={**body, "parameters": {"binary_data_output": True}, "outputs": [{"name": "output", "parameters": {"binary_data": False}}]},
    )
    assert as_json.json()["outputs"][0]["data"] == [2, 4, 6]


def test_versioned_infer_path_and_two_inputs(server):
    body = infer_body(np.array([[1, 2, 3], [4, 5, 6]]), "INT32", name="a")
    body["inputs"].append({"name": "b", "shape": [2, 3], "datatype": "INT32", "data": [[10, 20, 30], [40, 50, 60]]})

    response = server.post("/v2/models/add/versions/1/infer", json=body)

    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0] == {"name": "output", "datatype": "INT32", "shape": [2, 3], "data": [11, 22, 33, 44, 55, 66]}


def test_an_api_without_declared_dtype_takes_any_numeric_datatype(server):
    for datatype, array in (("UINT8", np.array([1, 2], dtype=np.uint8)), ("FP32", np.array([[0.5]], dtype=np.float32))):
        output = server.post("/v2/models/anything/infer", json=infer_body(array, datatype)).json()["outputs"][0]
        assert (output["datatype"], output["shape"]) == (datatype, list(array.shape))


# -- errors --------------------------------------------------------------------------------------------
F32 = {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}

ERRORS = [
    pytest.param("POST", "/v2/models/predict/infer", {"content": b'{"inputs": ['}, 400, ["malformed JSON"], id="malformed"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [{**F32, "datatype": "FP64"}]}}, 422, ["input 'x'", "expected datatype FP32, got FP64"], id="datatype"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [{**F32, "shape": [2, 1]}]}}, 422, ["input 'x'", "expected shape [-1, 2], got [2, 1]"], id="shape"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [{**F32, "shape": [3]}]}}, 400, ["holds 3 elements"], id="count"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [{**F32, "name": "y"}]}}, 422, ["unknown input 'y'", "'x'"], id="unknown-input"),
    pytest.param("POST", "/v2/models/add/infer", {"json": {"inputs": [{**F32, "name": "a", "datatype": "INT32", "shape": [1, 3], "data": [1, 2, 3]}]}}, 422, ["missing input 'b'"], id="missing-input"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [F32], "outputs": [{"name": "probabilities"}]}}, 400, ["unknown output 'probabilities'", "'output'"], id="unknown-output"),
    pytest.param("POST", "/v2/models/echo_bytes/infer", {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}}, 422, ["expected datatype BYTES, got FP32"], id="bytes-model"),
    pytest.param("POST", "/v2/models/anything/infer", {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}}, 422, ["numeric datatype, got BYTES"], id="bytes-to-numeric"),
    pytest.param("POST", "/v2/models/predict/infer", {"content": json.dumps({"inputs": [F32]}).encode(), "headers": {"content-type": "text/plain"}}, 415, ["text/plain"], id="cors-simple-content-type"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [F32]}, "headers": {"content-encoding": "gzip"}}, 415, ["Content-Encoding: gzip", "uncompressed"], id="compressed"),
    pytest.param("POST", "/v2/models/predict/infer", {"json": {"inputs": [F32]}, "headers": {"inference-header-content-length": "many"}}, 400, ["Inference-Header-Content-Length"], id="header-length"),
    pytest.param("POST", "/v2/models/nope/infer", {"json": {"inputs": [F32]}}, 404, ["unknown model 'nope'", "'predict'"], id="unknown-model"),
    pytest.param("GET", "/v2/models/nope", {}, 404, ["unknown model 'nope'"], id="unknown-model-metadata"),
    pytest.param("GET", "/v2/models/nope/ready", {}, 404, ["unknown model 'nope'"], id="unknown-model-ready"),
    pytest.param("POST", "/v2/models/predict/versions/7/infer", {"json": {"inputs": [F32]}}, 404, ["no version '7'"], id="unknown-version"),
    pytest.param("GET", "/v2/models/predict/versions/7", {}, 404, ["no version '7'"], id="unknown-version-metadata"),
    pytest.param("POST", "/v2/models/greet/infer", {"json": {"inputs": [F32]}}, 404, ["'greet' is not served over the Open Inference Protocol", "string", "POST /greet"], id="non-tensor-api"),
    pytest.param("GET", "/v2/models/greet", {}, 404, ["not served over the Open Inference Protocol"], id="non-tensor-metadata"),
    pytest.param("GET", "/v2/models/predict/infer", {}, 405, ["GET is not allowed"], id="get-infer"),
    pytest.param("POST", "/v2/health/ready", {}, 405, ["POST is not allowed"], id="post-health"),
    pytest.param("GET", "/v2/repository/index", {}, 404, ["no Open Inference Protocol endpoint"], id="unknown-path"),
    pytest.param("POST", "/v2/models/fail/infer", {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}}, 500, ["fail raised RuntimeError: the model fell over"], id="model-raises"),
    pytest.param("POST", "/v2/models/strange/infer", {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}}, 500, ["complex128", "no protocol datatype"], id="unsendable-output"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "fragments"), ERRORS)
def test_errors_are_protocol_error_objects(server, method, path, kwargs, status, fragments):
    with server.client() as client:
        response = client.request(method, path, **kwargs)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str)
    for fragment in fragments:
        assert fragment in body["error"]


def test_the_server_carries_on_after_a_model_error(server):
    server.post("/v2/models/fail/infer", json=infer_body(np.array([1.0]), "FP64"))

    assert server.post("/v2/models/anything/infer", json=infer_body(np.array([1.0]), "FP64")).status_code == 200


def test_infer_requests_are_counted_in_the_api_metrics(server):
    before = server.scrape().value("modelbundle_requests_total", api="add", status="200")

    server.post("/v2/models/add/infer", json={"inputs": [{**F32, "name": n, "datatype": "INT32", "shape": [1, 3], "data": [1, 2, 3]} for n in "ab"]})

    assert server.scrape().value("modelbundle_requests_total", api="add", status="200") == before + 1


# -- batching -------------------------------------------------------------------------------------------
def test_infer_and_native_requests_are_batched_together(server):
    """Hold the model on one request, queue native, JSON-infer and binary-infer requests behind it,
    then open the gate: one model call holds rows of all three, and each caller gets its own rows."""
    service = server.service
    seen_before = len(service.batches)
    native_tags, json_tags, binary_tags = [1.0, 2.0], [11.0, 12.0], [21.0, 22.0]

    async def run():
        async with server.async_client(10) as client:
            held = asyncio.create_task(client.post("/predict", json=[[HOLD, 0]]))
            try:
                assert await asyncio.to_thread(service.held.wait, 30), "the held call never started"
                answered_before = await asyncio.to_thread(lambda: server.scrape().value("modelbundle_requests_total", api="predict"))
                requests = [client.post("/predict", json=[[tag, tag]]) for tag in native_tags]
                requests += [
                    client.post("/v2/models/predict/infer", json=infer_body(np.array([[tag, tag]], dtype=np.float32), "FP32"))
                    for tag in json_tags
                ]
                for tag in binary_tags:
                    content, headers = binary_request(np.array([[tag, tag]], dtype=np.float32), "FP32", parameters={"binary_data_output": True})
                    requests.append(client.post("/v2/models/predict/infer", content=content, headers=headers))
                tasks = [asyncio.create_task(r) for r in requests]
                deadline = time.monotonic() + 30
                while True:  # every request is queued (or answered) before the gate opens
                    scrape = await asyncio.to_thread(server.scrape)
                    arrived = scrape.value("modelbundle_queue_depth", api="predict") + scrape.value(
                        "modelbundle_requests_total", api="predict"
                    ) - answered_before
                    if arrived >= len(tasks):
                        break
                    assert time.monotonic() < deadline, f"only {arrived} of {len(tasks)} requests arrived"
                    await asyncio.sleep(0.01)
            finally:
                service.gate.set()
            return await held, await asyncio.gather(*tasks)

    held, responses = asyncio.run(run())

    assert held.status_code == 200
    assert [r.status_code for r in responses] == [200] * 6
    assert [r.json() for r in responses[:2]] == [[[tag, 2 * tag]] for tag in native_tags]
    assert [r.json()["outputs"][0]["data"] for r in responses[2:4]] == [[tag, 2 * tag] for tag in json_tags]
    assert [np.frombuffer(read_binary_output(r)[1], dtype="<f4").tolist() for r in responses[4:]] == [
        [tag, 2 * tag] for tag in binary_tags
    ]
    batches = [set(tags) for tags in service.batches[seen_before:]]
    assert any(set(native_tags + json_tags + binary_tags) <= tags for tags in batches), batches


def _infer_while_held(server):
    """A native request the model holds, and meanwhile one infer request: (held response, infer response)."""
    service = server.service

    async def run():
        async with server.async_client(2) as client:
            held = asyncio.create_task(client.post("/predict", json=[[HOLD, 0]]))
            try:
                assert await asyncio.to_thread(service.held.wait, 30)
                infer = await client.post("/v2/models/predict/infer", json=infer_body(np.array([[1, 1]], dtype=np.float32), "FP32"))
            finally:
                service.gate.set()
            return await held, infer

    return asyncio.run(run())


def test_overload_and_timeouts_follow_the_native_rules(serve_in_thread):
    # one request in flight at most: the second gets the native 503 with Retry-After, as a protocol error
    with serve_in_thread(Tensors, ServeConfig(max_concurrency=1, log_level="critical")) as server:
        held, refused = _infer_while_held(server)

    assert held.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "requests in flight" in refused.json()["error"]


# -- readiness and `bundle serve` ------------------------------------------------------------------------
def test_before_setup_the_server_is_live_but_not_ready():
    # the app without its lifespan: setup() has not run, as while a worker starts
    app = create_app(Tensors, ServeConfig())

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.get("/v2/health/live"),
                await client.get("/v2/health/ready"),
                await client.get("/v2/models/predict/ready"),
                await client.post("/v2/models/predict/infer", json=infer_body(np.array([[1, 1]], dtype=np.float32), "FP32")),
                await client.get("/v2/models/predict"),
            ]

    live, ready, model_ready, infer, metadata = asyncio.run(run())

    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert (model_ready.status_code, model_ready.json()) == (503, {"name": "predict", "ready": False})
    assert (infer.status_code, infer.json()) == (503, {"error": "predict is not ready"})
    assert infer.headers["retry-after"] == "1"
    assert metadata.status_code == 200  # metadata needs no model


def test_bundle_serve_speaks_the_protocol(serve_in_subprocess):
    with serve_in_subprocess("tensors.py:Tensors", "--workers", "2") as server:
        assert server.get("/v2/health/ready").json() == {"ready": True}
        response = server.post("/v2/models/add/infer", json={"inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "INT32", "data": [1, 2, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "INT32", "data": [1, 1, 1]},
        ]})  # fmt: skip
        assert response.json()["outputs"][0]["data"] == [2, 3, 4]


def test_an_infer_request_past_the_timeout_gets_504(serve_in_thread):
    with serve_in_thread(Tensors, ServeConfig(timeout=0.3, log_level="critical")) as server:
        _, late = _infer_while_held(server)

    assert late.status_code == 504
    assert late.json() == {"error": "predict did not answer within 0.3 s"}
