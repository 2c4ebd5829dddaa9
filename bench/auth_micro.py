"""CPU the access layer adds per request, measured in-process, in microseconds.

The req/s of ``auth_bench.py`` on a shared 2-core machine swings by more than the layer
could cost; this times one request's pass through ``guard`` (API key check, rate limit,
CORS marks) in front of an app that does nothing, against that app called directly.

    .venv/bin/python bench/auth_micro.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from modelbundle.runtime import ServeConfig
from modelbundle.runtime._auth import guard

CALLS = 100_000
KEY = "bench-key-0123456789abcdef"
HEADERS = [(b"host", b"127.0.0.1:3000"), (b"content-type", b"application/json"), (b"content-length", b"300")]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def _send(message: Any) -> None:
    pass


async def _receive() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


def _request_id(given: bytes | None) -> bytes:
    return b"r-1"


async def _time(app: Any, headers: list[tuple[bytes, bytes]]) -> float:
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "client": ("127.0.0.1", 5000)}
    start = time.perf_counter()
    for _ in range(CALLS):
        await app(dict(scope), _receive, _send)
    return (time.perf_counter() - start) / CALLS * 1e6


async def main() -> None:
    bearer = [*HEADERS, (b"authorization", f"Bearer {KEY}".encode())]
    cases = [
        ("direct (no access control)", ServeConfig(), HEADERS),
        ("API key", ServeConfig(api_keys=(KEY,)), bearer),
        ("API key + rate limit", ServeConfig(api_keys=(KEY,), rate_limit="1000000000/s"), bearer),
        ("API key + rate limit + CORS", ServeConfig(api_keys=(KEY,), rate_limit="1000000000/s", cors_origin=("https://a.test",)),
         [*bearer, (b"origin", b"https://a.test")]),
    ]
    base = None
    for label, config, headers in cases:
        app = guard(_app, config, _request_id)
        micros = min([await _time(app, headers) for _ in range(3)])
        base = micros if base is None else base
        print(f"{label:30} {micros:6.2f} us a request ({micros - base:+.2f} us)")


if __name__ == "__main__":
    asyncio.run(main())
