"""``Image``: image bodies of any format Pillow reads, base64 in JSON, PNG responses."""

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from modelbundle.adapters import Image, adapter_for
from modelbundle.errors import BadRequest, InvalidInput

PNG = "image/png"
JSON = "application/json"


@pytest.fixture
def picture() -> PILImage.Image:
    rng = np.random.default_rng(7)
    return PILImage.fromarray(rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8), mode="RGB")


def encode(image: PILImage.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def pixels(image: PILImage.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_png_body_round_trip_keeps_every_pixel(picture: PILImage.Image) -> None:
    adapter = Image()
    decoded = adapter.from_body(encode(picture, "PNG"), PNG, "img")
    np.testing.assert_array_equal(pixels(decoded), pixels(picture))
    body = adapter.to_body(decoded, PNG)
    with PILImage.open(io.BytesIO(body)) as reread:
        assert reread.format == "PNG"
        np.testing.assert_array_equal(pixels(reread), pixels(picture))


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_other_formats_decode(picture: PILImage.Image, fmt: str) -> None:
    gray = picture.convert("L")  # lossless in every format listed
    decoded = Image().from_body(encode(gray, fmt), f"image/{fmt.lower()}", "img")
    assert decoded.size == gray.size
    np.testing.assert_array_equal(np.asarray(decoded.convert("L")), np.asarray(gray))


def test_jpeg_body_decodes(picture: PILImage.Image) -> None:
    decoded = Image().from_body(encode(picture, "JPEG"), "image/jpeg", "img")
    assert decoded.format == "JPEG"
    assert decoded.size == picture.size


def test_base64_json_round_trip(picture: PILImage.Image) -> None:
    adapter = Image()
    decoded = adapter.from_json(base64.b64encode(encode(picture, "PNG")).decode("ascii"), "img")
    np.testing.assert_array_equal(pixels(decoded), pixels(picture))
    encoded = adapter.to_json(decoded)
    with PILImage.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as reread:
        assert reread.format == "PNG"
        np.testing.assert_array_equal(pixels(reread), pixels(picture))


@pytest.mark.parametrize("value", ["***not base64***", 42, ["iVBOR"], None])
def test_bad_base64_is_invalid_input(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^img: expected a base64-encoded image$"):
        Image().from_json(value, "img")


def test_base64_of_something_that_is_not_an_image_is_bad_request() -> None:
    value = base64.b64encode(b"just some text").decode("ascii")
    with pytest.raises(BadRequest, match=r"^img: not an image Pillow can read \("):
        Image().from_json(value, "img")


@pytest.mark.parametrize("body", [b"", b"GIF89a truncated", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_bad_image_body_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^img: not an image Pillow can read \(") as info:
        Image().from_body(body, PNG, "img")
    assert info.value.status_code == 400


def test_response_is_png_unless_json_is_asked_for() -> None:
    adapter = Image()
    assert adapter.response_media_type("") == PNG
    assert adapter.response_media_type("image/*") == PNG
    assert adapter.response_media_type(JSON) == JSON
    assert adapter.json_schema({})["contentEncoding"] == "base64"
    assert not adapter.batchable


def test_adapter_for_pil_image() -> None:
    assert isinstance(adapter_for(PILImage.Image), Image)


def test_an_image_above_the_pixel_limit_is_refused_before_it_is_decoded() -> None:
    huge = PILImage.new("L", (4000, 3000))  # compresses to a few KB, decodes to 12 MB
    with pytest.raises(InvalidInput, match=r"img: image of 4000x3000 pixels is above the limit of 1000000 pixels"):
        Image(max_pixels=1_000_000).from_body(encode(huge, "PNG"), "image/png", "img")
    assert Image().from_body(encode(huge, "PNG"), "image/png", "img").size == (4000, 3000)
