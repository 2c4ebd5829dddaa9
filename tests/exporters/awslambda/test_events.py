"""Event translation, without a service: AWS's documented events in, HTTP requests out, and back."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from modelbundle.errors import BadRequest, InvalidInput, ModelError, NotFound, RequestError
from modelbundle.exporters.awslambda import HTTPResponse, event_format, format_response, parse_event

EVENTS = Path(__file__).parent / "events"
ROUTES = {"predict": "/predict", "echo": "/v1/echo"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def test_rest_v1_event() -> None:
    kind, request = parse_event(load("apigateway-rest-v1.json"), ROUTES)
    assert kind == "v1"
    assert (request.method, request.path) == ("POST", "/hello/world")  # REST APIs leave the stage out of "path"
    # multi-value parameters are kept, in order, and re-encoded
    assert request.query_string == b"name=me&multivalueName=you&multivalueName=me"
    assert request.header(b"content-type") == b"application/json"
    assert request.header(b"x-forwarded-for") == b"54.240.196.186, 54.182.214.83"
    assert all(name == name.lower() and name for name, _ in request.headers)  # the documented empty header is dropped
    assert request.body == b'{\r\n\t"a": 1\r\n}'
    assert request.client == "192.168.196.186"
    scope = request.scope()
    assert scope["server"] == ("gy415nuibc.execute-api.us-east-1.amazonaws.com", 443)
    assert scope["raw_path"] == b"/hello/world" and scope["scheme"] == "https"


def test_rest_v1_without_multi_value_fields_uses_the_single_ones() -> None:
    event = load("apigateway-rest-v1.json")
    event["multiValueHeaders"] = None
    event["multiValueQueryStringParameters"] = None
    _, request = parse_event(event, ROUTES)
    assert request.query_string == b"name=me&multivalueName=me"
    assert request.header(b"host") == b"gy415nuibc.execute-api.us-east-1.amazonaws.com"


def test_http_v1_event_with_repeated_headers() -> None:
    kind, request = parse_event(load("apigateway-http-v1.json"), ROUTES)
    assert kind == "v1" and request.method == "GET" and request.path == "/my/path"
    assert [v for k, v in request.headers if k == b"header2"] == [b"value1", b"value2"]
    assert request.query_string == b"parameter1=value1&parameter1=value2&parameter2=value"


@pytest.mark.parametrize("name", ["apigateway-http-v2.json", "function-url.json"])
def test_v2_events(name: str) -> None:
    kind, request = parse_event(load(name), ROUTES)
    assert kind == "v2"
    assert (request.method, request.path) == ("POST", "/my/path")
    assert request.query_string == b"parameter1=value1&parameter1=value2&parameter2=value"
    assert request.header(b"header2") == b"value1,value2"  # v2 joins repeated headers with commas
    assert request.header(b"cookie") == b"cookie1; cookie2"
    assert request.body in (b"Hello from Lambda", b"Hello from client!")


@pytest.mark.parametrize(
    ("raw_path", "stage", "path"),
    [
        ("/prod/predict", "prod", "/predict"),  # an HTTP API stage other than $default prefixes rawPath
        ("/prod", "prod", "/"),
        ("/production/predict", "prod", "/production/predict"),  # only a whole segment is a stage
        ("/prod/predict", "$default", "/prod/predict"),
        ("/a%20b", "$default", "/a b"),
    ],
)
def test_v2_stage_prefix_and_escapes(raw_path: str, stage: str, path: str) -> None:
    event = load("apigateway-http-v2.json")
    event["rawPath"] = raw_path
    event["requestContext"]["stage"] = stage
    assert parse_event(event, ROUTES)[1].path == path


def test_v1_stage_is_stripped_only_for_http_apis() -> None:
    rest = load("apigateway-rest-v1.json") | {"path": "/testStage/predict"}
    assert parse_event(rest, ROUTES)[1].path == "/testStage/predict"
    http = load("apigateway-http-v1.json") | {"path": "/beta/predict"}
    http["requestContext"]["stage"] = "beta"
    assert parse_event(http, ROUTES)[1].path == "/predict"


def test_base64_request_bodies_are_decoded() -> None:
    payload = bytes(range(256))
    event = load("function-url.json") | {"body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    assert parse_event(event, ROUTES)[1].body == payload
    with pytest.raises(BadRequest, match="isBase64Encoded but is not valid base64"):
        parse_event(event | {"body": "not base64!"}, ROUTES)
    assert parse_event(load("function-url.json") | {"body": None}, ROUTES)[1].body == b""


def test_direct_invocation() -> None:
    kind, request = parse_event({"api": "echo", "input": {"x": [1, 2]}}, ROUTES)
    assert kind == "direct"
    assert (request.method, request.path, request.body) == ("POST", "/v1/echo", b'{"x":[1,2]}')
    assert request.header(b"content-type") == b"application/json"
    with pytest.raises(NotFound, match="no API named 'nope'; the APIs are echo, predict"):
        parse_event({"api": "nope", "input": 1}, ROUTES)
    with pytest.raises(BadRequest, match="cannot be sent as JSON"):
        parse_event({"api": "echo", "input": float("nan")}, ROUTES)


@pytest.mark.parametrize("event", [{"Records": []}, [], "predict", {"api": "predict"}, {"httpMethod": "GET"}])
def test_other_events_are_refused(event: Any) -> None:
    with pytest.raises(BadRequest, match="unsupported event"):
        event_format(event)


def response(status: int, content_type: bytes, body: bytes, *extra: tuple[bytes, bytes]) -> HTTPResponse:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    return HTTPResponse(status, headers, body)


def test_responses_text_or_base64() -> None:
    text = format_response("v2", response(200, b"application/json", b'{"a":1}'))
    assert text == {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"a":1}', "isBase64Encoded": False}
    binary = format_response("v1", response(200, b"application/x-npy", b"\x93NUMPY\x00\xff"))
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x93NUMPY\x00\xff"
    # a text type whose body is not UTF-8 still arrives intact
    latin = format_response("v2", response(200, b"text/plain", b"caf\xe9"))
    assert latin["isBase64Encoded"] is True and base64.b64decode(latin["body"]) == b"caf\xe9"
    problem = format_response("v2", response(422, b"application/problem+json; charset=utf-8", b"{}"))
    assert problem["isBase64Encoded"] is False and problem["statusCode"] == 422


def test_repeated_response_headers_and_cookies() -> None:
    answer = response(200, b"text/plain", b"ok", (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"vary", b"accept"), (b"vary", b"origin"))
    v1 = format_response("v1", answer)
    assert v1["multiValueHeaders"]["set-cookie"] == ["a=1", "b=2"]
    assert "content-length" not in v1["headers"]  # the gateway sets its own
    v2 = format_response("v2", answer)
    assert v2["cookies"] == ["a=1", "b=2"] and "set-cookie" not in v2["headers"]
    assert v2["headers"]["vary"] == "accept,origin"


def test_direct_responses() -> None:
    assert format_response("direct", response(200, b"application/json", b"[0,1,2]")) == [0, 1, 2]
    assert format_response("direct", response(200, b"text/plain; charset=utf-8", b"hi")) == "hi"
    assert format_response("direct", response(200, b"image/png", b"\x89PNG")) == {
        "contentType": "image/png", "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True,
    }


@pytest.mark.parametrize(
    ("status", "kind", "cls"), [(422, "invalid_input", InvalidInput), (500, "model_error", ModelError), (404, "not_found", NotFound)]
)
def test_direct_errors_are_raised_as_the_runtime_error(status: int, kind: str, cls: type[RequestError]) -> None:
    body = json.dumps({"error": {"type": kind, "message": "what went wrong", "request_id": "r1"}}).encode()
    with pytest.raises(cls, match=r"^what went wrong$"):
        format_response("direct", response(status, b"application/json", body))


def test_direct_error_of_unknown_shape_keeps_the_status() -> None:
    with pytest.raises(RequestError, match="upstream broke") as info:
        format_response("direct", response(502, b"text/plain", b"upstream broke"))
    assert type(info.value) is RequestError and info.value.status_code == 502
