"""The adapter contract: one Python type <-> the wire (JSON values, raw bodies, JSON schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import BadRequest, InvalidInput

JSON = "application/json"
#: what a client who sent NaN or infinity, in any encoding, is told to do
FINITE_HINT = "send finite numbers (JSON has no NaN or infinity, and no other encoding takes them either)"


class Adapter:
    """Turns one parameter or return value into wire data and back.

    An adapter knows the JSON form of its type (``from_json``/``to_json``), may
    accept other media types for a whole body (``from_body``/``to_body``), and
    describes itself with a JSON schema for OpenAPI. Batchable adapters also
    know how to merge inputs along a dimension and split an output back.
    """

    #: media types accepted as a whole request body, the first is the default response type
    media_types: ClassVar[tuple[str, ...]] = (JSON,)
    #: True when values of this type can be merged into a batch along a dimension
    batchable: ClassVar[bool] = False
    #: True when the JSON form may be an object, so that a one-parameter API's object body may be
    #: the bare value; False (lists, arrays, strings) makes every object body the keyed form
    json_object: ClassVar[bool] = True

    def describe(self) -> str:
        """A short human name of the expected type, used in error messages."""
        return type(self).__name__

    def describe_json(self) -> str:
        """What the JSON form looks like, for a caller who sent nothing (an object names its fields)."""
        return self.describe()

    # -- decoding -----------------------------------------------------------------
    def from_json(self, value: Any, field: str) -> Any:
        """Validate and convert a decoded JSON value; raise InvalidInput naming ``field``."""
        raise NotImplementedError

    def from_python(self, value: Any, field: str) -> Any:
        """Validate a Python value handed over in-process (a call to a dependency service);
        raise InvalidInput naming ``field``. Types whose JSON form differs from their Python one override it."""
        return self.from_json(value, field)

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        """Decode a whole non-JSON body of one of ``media_types``."""
        raise BadRequest(f"{media_type} bodies are not accepted for '{field}'")

    # -- encoding -----------------------------------------------------------------
    def to_json(self, value: Any) -> Any:
        """Return something orjson can serialise (numpy arrays are allowed)."""
        raise NotImplementedError

    def to_body(self, value: Any, media_type: str) -> bytes:
        """Encode a return value as a whole response body of a non-JSON media type."""
        raise NotImplementedError

    def response_media_type(self, accept: str) -> str:
        """Pick the response media type from an Accept header (JSON unless asked otherwise)."""
        if accept:
            for media_type in self.media_types:
                if media_type != JSON and media_type in accept:
                    return media_type
        return self.media_types[0]

    # -- schema -------------------------------------------------------------------
    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        """The JSON schema of the JSON form; shared definitions go into ``defs``."""
        return {}

    def body_schema(self, media_type: str) -> dict[str, Any]:
        """The schema of a whole request body of ``media_type`` (one of ``media_types`` but JSON)."""
        return {"type": "string"} if media_type.startswith("text/") else {"type": "string", "format": "binary"}

    # -- batching (only for batchable adapters) -------------------------------------
    def rows(self, value: Any, dim: int) -> int:
        """How many rows ``value`` holds along ``dim``."""
        raise NotImplementedError

    def batch(self, values: Sequence[Any], dim: int) -> Any:
        """Merge several inputs along ``dim`` into one."""
        raise NotImplementedError

    def unbatch(self, value: Any, sizes: Sequence[int], dim: int) -> list[Any]:
        """Split a batched output back into pieces of ``sizes`` rows."""
        raise NotImplementedError

    def empty(self, dim: int) -> Any:
        """The answer to a batch of no rows, or None when this type cannot make one (dtype or shape unknown)."""
        return None


def invalid(field: str, message: str) -> InvalidInput:
    """An InvalidInput whose message starts with the offending field."""
    return InvalidInput(f"{field}: {message}")
