"""KServe's own ``InferenceRESTClient`` (protocol v2), used as its documentation shows, against a served Service.

``kserve`` pins ``pandas<3`` (and pulls grpcio, kubernetes, aiohttp...), so installing
it here would downgrade the test environment's pandas. It lives in its own venv in the
session's cache instead, installed from requirements/kserve-client.lock (about 450 MB,
under a minute with a warm pip cache), and the client runs there in a subprocess
against a server in this process.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import SHARED_CACHE
from fixtures.services.tensors import Tensors
from fixtures.venvs import locked_venv
from modelbundle.runtime import ServeConfig

from .test_oip_codec import SAMPLES

CLIENT = r"""
import asyncio, json, sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

url, samples = sys.argv[1], json.loads(sys.stdin.read())
DTYPES = {"BOOL": "bool", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
          "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
          "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object"}


def plain(array):
    return [item.hex() if isinstance(item, bytes) else item.encode().hex() if isinstance(item, str) else item
            for item in array.reshape(-1).tolist()]


async def main():
    out = {}
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    out["live"] = await client.is_server_live(url)
    out["ready"] = await client.is_server_ready(url)
    out["model_ready"] = await client.is_model_ready(url, "predict")
    out["unknown_model_ready"] = await client.is_model_ready(url, "nope")
    out["cases"] = {}
    for datatype, sample in samples.items():
        for binary in (True, False):
            if datatype == "FP16" and not binary:
                continue  # the kserve client refuses to send FP16 as JSON
            if datatype == "BYTES":
                data = np.array([bytes.fromhex(item) for item in sample["data"]], dtype=object)
            else:
                data = np.array(sample["data"], dtype=DTYPES[datatype])
            data = data.reshape(sample["shape"])
            infer_input = InferInput(name="x", shape=list(data.shape), datatype=datatype)
            infer_input.set_data_from_numpy(data, binary_data=binary)
            model = "echo_" + datatype.lower()
            request = InferRequest(
                model_name=model, infer_inputs=[infer_input], request_id=f"{datatype}-{binary}",
                request_outputs=[RequestedOutput("output", parameters={"binary_data": binary})],
            )
            response = await client.infer(url, request, model_name=model)
            output = response.outputs[0]
            out["cases"][f"{datatype}-{binary}"] = {
                "id": response.id, "name": output.name, "datatype": output.datatype, "shape": list(output.shape),
                "dtype": str(output.as_numpy().dtype), "data": plain(output.as_numpy()),
            }
    wrong = InferInput(name="x", shape=[1, 2], datatype="FP64")
    wrong.set_data_from_numpy(np.zeros((1, 2)), binary_data=False)
    try:
        await client.infer(url, InferRequest(model_name="predict", infer_inputs=[wrong]), model_name="predict")
    except httpx.HTTPStatusError as exc:
        out["error"] = [exc.response.status_code, str(exc)]
    await client.close()
    print(json.dumps(out))


asyncio.run(main())
"""


def _plain(array) -> list:
    return [item.hex() if isinstance(item, bytes) else item for item in array.reshape(-1).tolist()]


@pytest.fixture(scope="module")
def kserve_python() -> Path:
    return locked_venv("kserve-client.lock", SHARED_CACHE / "venvs")


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Tensors, ServeConfig(log_level="critical")) as server:
        yield server


def test_kserve_rest_client_gets_correct_answers(server, kserve_python):
    samples = {datatype: {"shape": list(array.shape), "data": _plain(array)} for datatype, array in SAMPLES.items()}

    result = subprocess.run(
        [kserve_python, "-c", CLIENT, server.url],
        input=json.dumps(samples), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["live"], out["ready"], out["model_ready"], out["unknown_model_ready"]) == (True, True, True, False)
    expected_cases = {f"{d}-{b}" for d in SAMPLES for b in (True, False)} - {"FP16-False"}
    assert set(out["cases"]) == expected_cases
    for case, got in out["cases"].items():
        datatype = case.split("-")[0]
        sample = SAMPLES[datatype]
        assert (got["id"], got["name"], got["datatype"], got["shape"]) == (case, "output", datatype, list(sample.shape)), case
        assert got["data"] == samples[datatype]["data"], case
        if datatype != "BYTES":
            assert got["dtype"] == str(sample.dtype), case
    status, message = out["error"]
    assert status == 422
    assert "expected datatype FP32, got FP64" in message
