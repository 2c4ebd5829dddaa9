"""LambdaHandler in this process, over the real runtime app: what each event gets back."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelbundle.errors import InvalidInput, ModelError, NotFound, ServeError
from modelbundle.exporters.awslambda import LambdaHandler, lambda_config
from modelbundle.runtime import ServeConfig, create_app

from ._services import BrokenSetup, Toolbox

EVENTS = Path(__file__).parent / "events"


def event(name: str, path: str, body: str | bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    encoded = isinstance(body, bytes)
    data["body"] = base64.b64encode(body).decode() if encoded else body
    data["isBase64Encoded"] = encoded
    if data.get("version") == "2.0":
        data["rawPath"] = path
        data["headers"] = {"content-type": content_type, **extra}
    else:
        data["path"] = path
        data["httpMethod"] = "POST"
        data["headers"] = {"Content-Type": content_type, **extra}
        data["multiValueHeaders"] = {k: [v] for k, v in data["headers"].items()}
    return data


@pytest.fixture(scope="module")
def handler() -> Iterator[LambdaHandler]:
    made = LambdaHandler(create_app(Toolbox, ServeConfig(batching=False, access_log=False)))
    made.start()
    yield made
    made.close()


def test_setup_runs_once_at_start(handler: LambdaHandler) -> None:
    assert handler.app.service is not None and handler.app.service.setups == 1
    handler({"api": "add", "input": [1]})
    assert handler.app.service.setups == 1


@pytest.mark.parametrize("name", ["apigateway-rest-v1.json", "apigateway-http-v1.json", "apigateway-http-v2.json", "function-url.json"])
def test_json_api_through_every_http_event(handler: LambdaHandler, name: str) -> None:
    answer = handler(event(name, "/add", '{"x": [1, 2, 3.5]}', "application/json"), SimpleNamespace(aws_request_id="req-1"))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == 6.5
    assert answer["headers"]["x-request-id"] == "req-1"


def test_binary_round_trip(handler: LambdaHandler) -> None:
    payload = bytes(range(256)) * 3
    answer = handler(event("function-url.json", "/reverse", payload, "application/octet-stream"))
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True
    assert answer["headers"]["content-type"] == "application/octet-stream"
    assert base64.b64decode(answer["body"]) == payload[::-1]


def test_text_api(handler: LambdaHandler) -> None:
    answer = handler(event("apigateway-rest-v1.json", "/greet", "Zoë", "text/plain; charset=utf-8"))
    assert (answer["statusCode"], answer["body"], answer["isBase64Encoded"]) == (200, "hello Zoë", False)


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "kind"),
    [
        ("/add", "{oops", "application/json", 400, "bad_request"),
        ("/add", '{"x": "abc"}', "application/json", 422, "invalid_input"),
        ("/add", "x=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("/nope", "{}", "application/json", 404, "not_found"),
        ("/fail", "3", "application/json", 500, "model_error"),
    ],
)
def test_errors_are_the_runtimes(handler: LambdaHandler, path: str, body: str, content_type: str, status: int, kind: str) -> None:
    answer = handler(event("apigateway-http-v2.json", path, body, content_type), SimpleNamespace(aws_request_id="abc"))
    assert answer["statusCode"] == status
    error = json.loads(answer["body"])["error"]
    assert (error["type"], error["request_id"]) == (kind, "abc")


def test_get_routes_of_the_app_work_too(handler: LambdaHandler) -> None:
    probe = event("function-url.json", "/readyz", "", "application/json")
    probe["requestContext"]["http"]["method"] = "GET"
    answer = handler(probe)
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"status": "ready"})


@pytest.mark.parametrize(("method", "path"), [("POST", "/add/jobs"), ("GET", "/add/jobs/0123abcd"), ("GET", "/greet/jobs/")])
def test_jobs_are_refused_with_one_line_that_says_why(handler: LambdaHandler, method: str, path: str) -> None:
    request = event("function-url.json", path, "{}", "application/json")
    request["requestContext"]["http"]["method"] = method
    answer = handler(request, SimpleNamespace(aws_request_id="job-1"))
    assert answer["statusCode"] == 501
    error = json.loads(answer["body"])["error"]
    assert (error["type"], error["request_id"]) == ("not_implemented", "job-1")
    assert "long-running server" in error["message"] and "\n" not in error["message"]
    # a route that only starts like one is the app's as before
    assert handler(event("function-url.json", "/add", '{"x": [1]}', "application/json"))["statusCode"] == 200


def test_direct_invocations(handler: LambdaHandler) -> None:
    assert handler({"api": "add", "input": {"x": [1, 2]}}) == 3.0
    assert handler({"api": "greet", "input": "you"}) == "hello you"
    assert handler({"api": "reverse", "input": base64.b64encode(b"abc").decode()}) == base64.b64encode(b"cba").decode()
    with pytest.raises(InvalidInput, match=r"valid number"):
        handler({"api": "add", "input": {"x": ["a"]}})
    with pytest.raises(ModelError, match="fail raised ValueError: cannot handle 7"):
        handler({"api": "fail", "input": 7})
    with pytest.raises(NotFound, match="no API named 'sub'"):
        handler({"api": "sub", "input": 1})


def test_a_failing_setup_fails_the_start() -> None:
    broken = LambdaHandler(create_app(BrokenSetup, ServeConfig(access_log=False)))
    try:
        with pytest.raises(ServeError, match="weights file is corrupt"):
            broken.start()
    finally:
        broken.close()


HANDLER_SCRIPT = """
from exporters.awslambda._services import SaysGoodbye
from modelbundle.exporters.awslambda import LambdaHandler
from modelbundle.runtime import ServeConfig, create_app

handler = LambdaHandler(create_app(SaysGoodbye, ServeConfig(access_log=False)))
handler.start()
print(handler({"api": "predict", "input": 41}), flush=True)
"""


def test_a_handler_process_exits_quietly_and_runs_teardown() -> None:
    # a handler left open (as on Lambda) must not leave a half-run lifespan for the exit to destroy
    tests_dir = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", HANDLER_SCRIPT], cwd=tests_dir, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(tests_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == ["42", "teardown ran"]


def test_lambda_config_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELBUNDLE_BATCHING", "MODELBUNDLE_ACCESS_LOG", "MODELBUNDLE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    config = lambda_config()
    assert (config.batching, config.access_log) == (False, False)
    monkeypatch.setenv("MODELBUNDLE_BATCHING", "1")
    monkeypatch.setenv("MODELBUNDLE_TIMEOUT", "5")
    config = lambda_config()
    assert (config.batching, config.timeout) == (True, 5.0)
    assert os.environ["MODELBUNDLE_TIMEOUT"] == "5"
