"""``Text`` (str) and ``Bytes`` (bytes): plain bodies, JSON strings, base64; and unknown hints."""

import base64
from typing import Any

import pytest

from modelbundle.adapters import Bytes, Text, adapter_for
from modelbundle.errors import BadRequest, InvalidInput

TEXT = "text/plain"
OCTET = "application/octet-stream"
JSON = "application/json"


# -- Text -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["hello", "", "naïve café ☕", "line\nbreak"])
def test_text_round_trips_through_json_and_body(value: str) -> None:
    adapter = Text()
    assert adapter.from_json(value, "q") == value
    assert adapter.to_json(adapter.from_json(value, "q")) == value
    body = adapter.to_body(value, TEXT)
    assert body == value.encode("utf-8")
    assert adapter.from_body(body, TEXT, "q") == value


@pytest.mark.parametrize(("value", "type_name"), [(3, "int"), (None, "NoneType"), (["a"], "list"), ({"q": "a"}, "dict")])
def test_text_from_non_string_json_is_invalid_input(value: Any, type_name: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^q: expected a string, got {type_name}$"):
        Text().from_json(value, "q")


def test_text_body_that_is_not_utf8_is_bad_request() -> None:
    body = b"ok\xff\xfe"
    with pytest.raises(BadRequest, match=r"^q: body is not valid UTF-8 \(invalid start byte at byte 2\)$"):
        Text().from_body(body, TEXT, "q")


def test_text_response_is_plain_unless_json_is_asked_for() -> None:
    adapter = Text()
    assert adapter.response_media_type("") == TEXT
    assert adapter.response_media_type("*/*") == TEXT
    assert adapter.response_media_type(JSON) == JSON
    assert adapter.json_schema({}) == {"type": "string"}
    assert not adapter.batchable


# -- Bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"", b"\x00\x01\xfe\xff", bytes(range(256))])
def test_bytes_round_trip_through_base64_json_and_octet_body(value: bytes) -> None:
    adapter = Bytes()
    encoded = adapter.to_json(value)
    assert encoded == base64.b64encode(value).decode("ascii")
    assert adapter.from_json(encoded, "blob") == value
    assert adapter.to_body(bytearray(value), OCTET) == value
    assert adapter.from_body(value, OCTET, "blob") == value


@pytest.mark.parametrize("value", ["not base64!", "abc", 12, None])
def test_bytes_from_bad_base64_is_invalid_input(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^blob: expected a base64 string$"):
        Bytes().from_json(value, "blob")


def test_bytes_response_is_octet_stream_unless_json_is_asked_for() -> None:
    adapter = Bytes()
    assert adapter.response_media_type("") == OCTET
    assert adapter.response_media_type(JSON) == JSON
    assert adapter.json_schema({}) == {"type": "string", "contentEncoding": "base64"}


# -- selection --------------------------------------------------------------------------


@pytest.mark.parametrize(("hint", "expected"), [(str, Text), (bytes, Bytes), (bytearray, Bytes)])
def test_adapter_for_text_and_bytes(hint: type, expected: type) -> None:
    assert type(adapter_for(hint)) is expected


class Opaque:
    pass


@pytest.mark.parametrize("hint", [Opaque, object, type, complex, list[Opaque]])
def test_adapter_for_an_unsupported_type_is_none(hint: Any) -> None:
    assert adapter_for(hint) is None
