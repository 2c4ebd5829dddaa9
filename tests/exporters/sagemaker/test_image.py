"""The --target sagemaker image, started exactly as SageMaker starts it (``docker run IMAGE serve``), on the real engine."""

from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from fixtures.docker import Container, ImageSession, running
from modelbundle.exporters.sagemaker import MODEL_DATA_FILE

from .conftest import CLASSES, ROWS, SageMakerImage

ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
START_TIMEOUT = 120.0


def wait_ping(container: Container, timeout: float = START_TIMEOUT) -> None:
    container.wait_ready(timeout, path="/ping")


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def test_serve_answers_ping_and_invocations_in_json_csv_and_npy(sm_session: ImageSession, sagemaker_image: SageMakerImage) -> None:
    with running(sm_session.engine, sagemaker_image.tag, port=8080, command=["serve"]) as container:
        wait_ping(container)
        ping = container.get("/ping")
        assert (ping.status_code, ping.content) == (200, b"")
        assert f"loading artifacts from bundle {sagemaker_image.bundle.tag} (model)" in container.logs  # no /opt/ml/model

        answer = container.post("/invocations", json=ROWS)
        assert answer.status_code == 200, answer.text
        assert answer.json() == CLASSES

        csv_body = "".join(",".join(str(v) for v in row) + "\n" for row in ROWS).encode()
        csv = container.post("/invocations", content=csv_body, headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert (csv.status_code, csv.headers["content-type"], csv.text) == (200, "text/csv", "0\n2\n1\n")

        array = container.post(
            "/invocations", content=npy(ROWS), headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
        )
        assert array.status_code == 200, array.text
        assert np.load(io.BytesIO(array.content)).tolist() == CLASSES

        proba = container.post("/invocations", json=ROWS, headers={ATTRIBUTES: "api=proba;trace=7"})
        assert proba.status_code == 200, proba.text
        assert proba.headers[ATTRIBUTES] == "api=proba;trace=7"
        probabilities = np.array(proba.json())
        assert probabilities.shape == (3, 3) and np.argmax(probabilities, axis=1).tolist() == CLASSES

        bad = container.post("/invocations", content=b"5.1,3.5,oops,0.2\n", headers={"Content-Type": "text/csv", ATTRIBUTES: "a=1"})
        assert bad.status_code == 400 and "could not convert" in bad.json()["error"]["message"]
        assert bad.headers[ATTRIBUTES] == "a=1"
        assert container.post("/invocations", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
        assert container.post("/invocations", content=b"x", headers={"Content-Type": "image/png"}).status_code == 415
        assert container.post("/invocations", json=ROWS, headers={ATTRIBUTES: "api=train"}).status_code == 404

        timings = []
        with httpx.Client(base_url=container.url) as client:
            for _ in range(200):
                started = time.perf_counter()
                assert client.get("/ping").status_code == 200
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"\n/ping from the host through docker's port mapping: median {statistics.median(timings):.2f} ms, "
              f"p99 {timings[197]:.2f} ms over 200 calls")
        assert timings[197] < 100

        code, took = container.stop()
        assert code == 0, container.logs
        print(f"docker stop: exit {code} in {took:.2f} s")


def test_sagemaker_bind_to_port_moves_the_server(sm_session: ImageSession, sagemaker_image: SageMakerImage) -> None:
    environment = {"SAGEMAKER_BIND_TO_PORT": "9191", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    with running(sm_session.engine, sagemaker_image.tag, port=9191, command=["serve"], environment=environment) as container:
        wait_ping(container)
        assert container.post("/invocations", json=ROWS).json() == CLASSES
        assert "on http://0.0.0.0:9191 with 2 workers" in container.logs
        code, _ = container.stop()
        assert code == 0, container.logs


def test_model_data_in_opt_ml_model_replaces_the_bundled_artifacts(
    sm_session: ImageSession, sagemaker_image: SageMakerImage, shifted_model_dir: Path
) -> None:
    volumes = {str(shifted_model_dir): {"bind": "/opt/ml/model", "mode": "ro"}}
    with running(sm_session.engine, sagemaker_image.tag, port=8080, command=["serve"], volumes=volumes) as container:
        wait_ping(container)
        answer = container.post("/invocations", json=ROWS)
        assert answer.json() == [c + 10 for c in CLASSES], container.logs  # the shifted model, not the bundled one
        # the log says where the artifacts came from
        exported = json.loads((shifted_model_dir / MODEL_DATA_FILE).read_text())["bundle"]
        assert (
            f"loading artifacts from /opt/ml/model (model data exported from {exported}, every file checked), "
            f"not from bundle {sagemaker_image.bundle.tag}"
        ) in container.logs
        csv = container.post("/invocations", content=b"5.1,3.5,1.4,0.2\n", headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert csv.text == "10\n"


def test_model_data_that_is_not_ours_stops_the_container_with_a_clear_error(
    sm_session: ImageSession, sagemaker_image: SageMakerImage, tmp_path: Path
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"not ours")
    tmp_path.chmod(0o755)
    volumes = {str(tmp_path): {"bind": "/opt/ml/model", "mode": "ro"}}
    with running(sm_session.engine, sagemaker_image.tag, port=8080, command=["serve"], volumes=volumes) as container:
        assert container.container.wait(timeout=60)["StatusCode"] == 1
        assert "/opt/ml/model holds no modelbundle-model.json" in container.logs


def test_the_image_runs_as_root_and_says_it_accepts_bind_to_port(sm_session: ImageSession, sagemaker_image: SageMakerImage) -> None:
    config = sm_session.engine.images.get(sagemaker_image.tag).attrs["Config"]
    assert config["User"] == ""
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "modelbundle.runtime._sagemaker_main", "--bundle", "/opt/bundle"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]


def test_train_is_refused(sm_session: ImageSession, sagemaker_image: SageMakerImage) -> None:
    container = sm_session.engine.containers.run(sagemaker_image.tag, ["train"], detach=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 2
        assert b"cannot train" in container.logs()
    finally:
        container.remove(force=True)
