"""The --target lambda-image image under the real awslambdaric, fed v2 events through a Runtime API the test serves.

The container runs the way Lambda runs images: its own entrypoint and command,
a read-only root filesystem with a writable /tmp, a non-root user that is not
the image's, and ``AWS_LAMBDA_RUNTIME_API`` pointing at the Runtime API (here on
the host's loopback, shared with the container through host networking).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ._runtime_api import RuntimeAPI
from .conftest import LambdaImage

EVENTS = Path(__file__).parents[1] / "awslambda" / "events"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def v2_event(path: str, body: str, content_type: str = "application/json") -> dict[str, Any]:
    """AWS's documented HTTP API (v2) event, pointed at ``path``."""
    event: dict[str, Any] = json.loads((EVENTS / "apigateway-http-v2.json").read_text())
    event.update(rawPath=path, rawQueryString="", body=body, isBase64Encoded=False)
    event["headers"] = {"content-type": content_type, "accept": "application/json"}
    event["requestContext"]["http"].update(method="POST", path=path)
    return event


def run_function(image: LambdaImage, api: RuntimeAPI, **overrides: Any) -> Any:
    host, port = api.address.split(":")
    return image.engine.containers.run(
        image.tag, detach=True, network_mode="host", read_only=True, tmpfs={"/tmp": ""}, user="993:990",
        environment={
            "AWS_LAMBDA_RUNTIME_API": f"{host}:{port}", "AWS_LAMBDA_FUNCTION_NAME": "iris", "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/iris", "AWS_LAMBDA_LOG_STREAM_NAME": "test",
        },
        **overrides,
    )  # fmt: skip


def test_v2_events_are_answered_through_the_runtime_api(lambda_image: LambdaImage, runtime_api: RuntimeAPI) -> None:
    expected = joblib.load(lambda_image.project / "model.joblib").predict(np.array(ROWS)).tolist()
    container = run_function(lambda_image, runtime_api)
    try:
        started = time.perf_counter()
        kind, answer = runtime_api.invoke(v2_event("/predict", json.dumps({"x": ROWS})))
        cold = time.perf_counter() - started
        assert kind == "response", (answer, container.logs().decode())
        assert answer["statusCode"] == 200, answer
        assert json.loads(answer["body"]) == expected
        assert answer["headers"]["content-type"] == "application/json"

        started = time.perf_counter()
        kind, warm = runtime_api.invoke(v2_event("/predict", json.dumps(ROWS[:1])))
        print(f"\nlambda-image: first invocation (init: imports, bundle check, setup) {cold:.2f} s, "
              f"a warm one {(time.perf_counter() - started) * 1000:.1f} ms")
        assert (kind, warm["statusCode"], json.loads(warm["body"])) == ("response", 200, expected[:1])

        kind, bad = runtime_api.invoke(v2_event("/predict", json.dumps({"x": [[1.0, 2.0]]})))
        assert (kind, bad["statusCode"]) == ("response", 422)
        assert "expected shape (N, 4)" in json.loads(bad["body"])["error"]["message"]

        kind, missing = runtime_api.invoke(v2_event("/nope", "{}"))
        assert (kind, missing["statusCode"]) == ("response", 404)

        kind, csv = runtime_api.invoke(v2_event("/predict", "5.1,3.5,1.4,0.2\n", content_type="text/csv"))
        assert (kind, csv["statusCode"], json.loads(csv["body"])) == ("response", 200, expected[:1])
        assert runtime_api.init_errors == []
    finally:
        container.remove(force=True)


def test_the_image_follows_the_lambda_container_contract(lambda_image: LambdaImage) -> None:
    config = lambda_image.engine.images.get(lambda_image.tag).attrs["Config"]
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "awslambdaric"]
    assert config["Cmd"] == ["modelbundle_handler.handler"]
    assert config["WorkingDir"] == "/var/task"
    assert "LAMBDA_TASK_ROOT=/var/task" in config["Env"]
    assert not config.get("ExposedPorts") and not config.get("Healthcheck")
    assert config["User"] == "10001:10001"


def test_a_failing_init_is_reported_to_the_runtime_api(lambda_image: LambdaImage, runtime_api: RuntimeAPI) -> None:
    # a bundle whose RECORD check fails cannot be served: the handler module raises at import (Lambda's init)
    script = (
        "cp -r /opt/bundle /tmp/b && echo '# changed' >> /tmp/b/src/service.py && "
        "sed 's#/opt/bundle#/tmp/b#' /var/task/modelbundle_handler.py > /tmp/h.py && "
        "cd /tmp && PYTHONPATH=/tmp exec /opt/venv/bin/python -m awslambdaric h.handler"
    )
    container = run_function(lambda_image, runtime_api, entrypoint=["/bin/sh", "-c", script], command=[])
    try:
        deadline = time.monotonic() + 120
        while not runtime_api.init_errors and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runtime_api.init_errors, container.logs().decode()
        error = runtime_api.init_errors[0]
        assert "service.py" in error["errorMessage"] and "RECORD" in error["errorMessage"], error
    finally:
        container.remove(force=True)
