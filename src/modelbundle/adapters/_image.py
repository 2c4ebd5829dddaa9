"""``PIL.Image.Image``: image/* bodies, base64 inside JSON; responses are PNG."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image as PILImage

from ..errors import BadRequest
from ._base import JSON, Adapter, invalid

PNG = "image/png"
#: pixels an input image may have (a 40-megapixel photo fits); Image(max_pixels=...) changes it
DEFAULT_MAX_PIXELS = 50_000_000


class Image(Adapter):
    """A Pillow image. Accepts PNG, JPEG and whatever Pillow decodes; answers PNG."""

    media_types = (PNG, "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff", JSON)
    json_object = False

    def describe(self) -> str:
        return "an image"

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def _decode(self, data: bytes, field: str) -> Any:
        try:
            image = PILImage.open(io.BytesIO(data))  # reads the header only
        except Exception as exc:
            raise BadRequest(f"{field}: not an image Pillow can read ({exc})") from None
        width, height = image.size
        if width * height > self.max_pixels:  # a small PNG can decode to gigabytes
            raise invalid(field, f"image of {width}x{height} pixels is above the limit of {self.max_pixels} pixels")
        try:
            image.load()
        except Exception as exc:
            raise BadRequest(f"{field}: not an image Pillow can read ({exc})") from None
        return image

    def from_python(self, value: Any, field: str) -> Any:
        if not isinstance(value, PILImage.Image):
            raise invalid(field, f"expected a PIL image, got {type(value).__name__}")
        return value

    def from_json(self, value: Any, field: str) -> Any:
        if not isinstance(value, str):
            raise invalid(field, "expected a base64-encoded image")
        try:
            data = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise invalid(field, "expected a base64-encoded image") from None
        return self._decode(data, field)

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        return self._decode(body, field)

    def to_body(self, value: Any, media_type: str) -> bytes:
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()

    def to_json(self, value: Any) -> Any:
        return base64.b64encode(self.to_body(value, PNG)).decode("ascii")

    def response_media_type(self, accept: str) -> str:
        return JSON if accept.startswith(JSON) else PNG

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/*"}
