"""A job's result as stored: the API's return value encoded in every media type its output
adapter offers, packed into one byte string.

Encoding at finish time (rather than pickling the Python value) keeps the store free of
pickles and lets any replica answer ``GET .../result`` with the API's own encoder and Accept
rules, without the result's Python types. Outputs offer one or two media types, so this costs
one or two encodings per job.

Layout: a JSON header line ``{"<media type>": <length>, ...}\\n``, then the encodings in that order.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...adapters import Adapter
from .._codec import encode_result


class ResultNotEncodable(Exception):
    """No media type of the output adapter could encode the value; the message says why."""


def pack_result(adapter: Adapter, value: Any) -> bytes:
    encodings: dict[str, bytes] = {}
    errors = []
    for media_type in adapter.media_types:
        try:
            payload, _ = encode_result(adapter, value, media_type)
        except Exception as exc:  # the API returned something this media type cannot carry
            errors.append(f"{media_type}: {exc}")
            continue
        encodings[media_type] = payload
    if not encodings:
        raise ResultNotEncodable(f"returned {type(value).__name__}, which cannot be sent as {adapter.describe()}: {'; '.join(errors)}")
    header = orjson.dumps({media_type: len(payload) for media_type, payload in encodings.items()})
    return header + b"\n" + b"".join(encodings.values())


def unpack_result(packed: bytes) -> dict[str, bytes]:
    """Media type -> encoded body."""
    header, _, rest = packed.partition(b"\n")
    encodings, offset = {}, 0
    for media_type, length in orjson.loads(header).items():
        encodings[media_type] = rest[offset : offset + length]
        offset += length
    return encodings
