"""The OpenAPI path item of a WebSocket API (service_base/_openapi_websocket.py): a valid
OpenAPI 3.1 document once it replaces the API's path, with the handshake and the messages' schemas."""

from __future__ import annotations

from openapi_spec_validator import validate

from fixtures.services.sockets import Sockets
from modelbundle.service_base import build_openapi
from modelbundle.service_base._openapi_websocket import websocket_path_item


def _document() -> dict:
    document = build_openapi(Sockets)
    for api in Sockets.__apis__.values():
        if api.websocket:
            document["paths"][api.route] = websocket_path_item(api, document["components"]["schemas"])
    return document


def test_websocket_apis_are_documented_as_their_get_handshake_in_a_valid_document():
    document = _document()
    validate(document)
    count = document["paths"]["/count"]
    assert set(count) == {"get"}
    assert set(count["get"]["responses"]) == {"101", "426", "503"}
    assert count["get"]["x-websocket"] == {"incoming": {"type": "integer"}, "outgoing": {"type": "integer"}}
    assert "/reverse-bytes" in document["paths"]
    assert set(document["paths"]["/echo"]) == {"post"}  # the HTTP API is unchanged


def test_the_description_says_how_each_kind_of_message_is_read():
    paths = _document()["paths"]
    assert "a text message: the string itself" in paths["/shout"]["get"]["description"]
    assert "a binary one: application/x-npy" in paths["/double"]["get"]["description"]
    assert "1007 bad input" in paths["/double"]["get"]["description"]
