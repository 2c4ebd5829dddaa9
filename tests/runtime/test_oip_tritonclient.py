"""NVIDIA's ``tritonclient.http``, used as its documentation shows, against a served Service."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.services.tensors import Tensors
from modelbundle.runtime import ServeConfig

from .test_oip_codec import SAMPLES

httpclient = pytest.importorskip("tritonclient.http")
triton_utils = pytest.importorskip("tritonclient.utils")


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Tensors, ServeConfig(log_level="critical")) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("predict")
    assert client.is_model_ready("predict", model_version="1")
    assert not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("predict")
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_each_datatype_round_trips(client, datatype, binary):
    sample = SAMPLES[datatype]
    infer_input = httpclient.InferInput("x", list(sample.shape), datatype)
    infer_input.set_data_from_numpy(sample, binary_data=binary)
    output = httpclient.InferRequestedOutput("output", binary_data=binary)

    result = client.infer(f"echo_{datatype.lower()}", [infer_input], outputs=[output], request_id=f"{datatype}-{binary}")

    got = result.as_numpy("output")
    assert got.shape == sample.shape
    if datatype == "BYTES" and not binary:  # JSON BYTES come back as text
        assert [item.encode() for item in got.reshape(-1)] == sample.reshape(-1).tolist()
    else:
        assert got.dtype == sample.dtype
        assert got.tolist() == sample.tolist()
    assert result.get_response()["id"] == f"{datatype}-{binary}"
    assert result.get_output("output")["datatype"] == datatype


def test_outputs_default_to_binary_when_none_are_requested(client):
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    infer_input = httpclient.InferInput("x", list(x.shape), "FP32")
    infer_input.set_data_from_numpy(x)

    result = client.infer("predict", [infer_input])

    assert "binary_data_size" in result.get_output("output")["parameters"]
    assert result.as_numpy("output").tolist() == [[1.0, 4.0], [3.0, 8.0]]


def test_two_inputs_and_a_model_version(client):
    a = np.array([[1, 2, 3]], dtype=np.int32)
    inputs = [httpclient.InferInput(name, [1, 3], "INT32") for name in ("a", "b")]
    inputs[0].set_data_from_numpy(a, binary_data=True)
    inputs[1].set_data_from_numpy(10 * a, binary_data=False)

    result = client.infer("add", inputs, model_version="1")

    assert result.as_numpy("output").tolist() == [[11, 22, 33]]


def test_errors_reach_the_client_with_the_server_message(client):
    x = np.zeros((1, 2), dtype=np.float64)
    infer_input = httpclient.InferInput("x", [1, 2], "FP64")
    infer_input.set_data_from_numpy(x)

    with pytest.raises(triton_utils.InferenceServerException, match="expected datatype FP32, got FP64"):
        client.infer("predict", [infer_input])
    with pytest.raises(triton_utils.InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope")
    with pytest.raises(triton_utils.InferenceServerException, match="the model fell over"):
        client.infer("fail", [infer_input])
