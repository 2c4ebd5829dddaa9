"""The weights' own ranged GET against real HTTP servers on loopback that misbehave on purpose.

Servers that redirect (to their own origin and to another), ignore Range,
answer the wrong range, refuse with S3's and a registry's errors, or stall.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelbundle.errors import AuthenticationError, RemoteStoreError
from modelbundle.weights import _ranged_get
from modelbundle.weights._ranged_get import StatusError, open_ranged_get
from modelbundle.weights._sources import chunks_of

DATA = os.urandom(3 * 1024 * 1024 + 17)
Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose GET is ``handle``; it records each request's headers."""

    def __init__(self, handle: Handler) -> None:
        self.seen: list[dict[str, str]] = []
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's name
                server.seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def start(handle: Handler) -> Server:
        servers.append(Server(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def ranged(handler: http.server.BaseHTTPRequestHandler) -> None:
    """A well-behaved object server: 206 from the asked offset, 200 without Range."""
    asked = handler.headers.get("Range")
    if asked is None:
        send(handler, 200, DATA)
        return
    start = int(asked.removeprefix("bytes=").rstrip("-"))
    send(handler, 206, DATA[start:], Content_Range=f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")


def read_all(url: str, start: int = 0, headers: dict[str, str] | None = None) -> bytes:
    body = open_ranged_get(url, start, headers=headers)
    try:
        return b"".join(bytes(chunk) for chunk in chunks_of(body, 64 * 1024))
    finally:
        body.close()


@pytest.mark.parametrize("start", [0, 1, 1024 * 1024 + 5])
def test_an_object_is_read_from_any_offset(serve: Callable[[Handler], Server], start: int) -> None:
    server = serve(ranged)
    assert read_all(f"{server.url}/blob", start) == DATA[start:]
    assert server.seen[0].get("range") == (f"bytes={start}-" if start else None)


def test_a_server_that_ignores_range_is_skipped_forward(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda handler: send(handler, 200, DATA))
    assert read_all(f"{server.url}/blob", 1000) == DATA[1000:]


def test_a_range_other_than_the_one_asked_is_refused(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda handler: send(handler, 206, DATA, Content_Range=f"bytes 0-{len(DATA) - 1}/{len(DATA)}"))
    with pytest.raises(RemoteStoreError, match=r"answered the range from byte 10 with 'bytes 0-"):
        read_all(f"{server.url}/blob", 10)


def test_redirects_are_followed_and_the_token_goes_only_to_its_own_origin(serve: Callable[[Handler], Server]) -> None:
    storage = serve(ranged)
    registry = serve(
        lambda handler: send(handler, 307, b"", Location="/v2/blobs/moved")
        if handler.path.endswith("/start")
        else send(handler, 307, b"", Location=f"{storage.url}/signed?X-Amz-Signature=abc")
    )
    assert read_all(f"{registry.url}/v2/blobs/start", 5, {"Authorization": "Bearer secret"}) == DATA[5:]
    assert [seen.get("authorization") for seen in registry.seen] == ["Bearer secret", "Bearer secret"]
    assert storage.seen[0]["path"] == "/signed?X-Amz-Signature=abc"
    assert "authorization" not in storage.seen[0] and storage.seen[0]["range"] == "bytes=5-"


def test_a_redirect_loop_ends_with_an_error(serve: Callable[[Handler], Server]) -> None:
    server = serve(lambda handler: send(handler, 302, b"", Location="/again"))
    with pytest.raises(RemoteStoreError, match="redirected more than 5 times"):
        read_all(f"{server.url}/blob")


def test_a_refusal_carries_its_status_and_body(serve: Callable[[Handler], Server]) -> None:
    error = b"<Error><Code>AccessDenied</Code><Message>nope</Message></Error>"
    server = serve(lambda handler: send(handler, 403, error))
    with pytest.raises(StatusError) as caught:
        read_all(f"{server.url}/blob")
    assert (caught.value.status, caught.value.body) == (403, error)


def test_a_body_cut_short_is_a_remote_store_error(serve: Callable[[Handler], Server]) -> None:
    def short(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(DATA)))
        handler.end_headers()
        handler.wfile.write(DATA[:1000])
        handler.close_connection = True

    server = serve(short)
    body = open_ranged_get(f"{server.url}/blob")
    try:
        with pytest.raises(RemoteStoreError, match=r"reading from 127\.0\.0\.1:\d+ failed"):
            for _ in chunks_of(body):
                pass
    finally:
        body.close()


def test_a_server_that_stops_sending_times_out(serve: Callable[[Handler], Server], monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stall(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(DATA)))
        handler.end_headers()
        handler.wfile.write(DATA[:10])
        handler.wfile.flush()
        release.wait(10)

    monkeypatch.setattr(_ranged_get, "TIMEOUT", 0.3)
    server = serve(stall)
    try:
        with pytest.raises(RemoteStoreError, match=r"no answer in 0 s|timed out"):
            read_all(f"{server.url}/blob")
    finally:
        release.set()


def test_nothing_listening_is_a_one_line_error() -> None:
    with pytest.raises(RemoteStoreError, match=r"cannot read 127\.0\.0\.1:9 \(.*\); is it running"):
        read_all("http://127.0.0.1:9/blob")


def test_an_s3_refusal_is_the_s3_stores_error(serve: Callable[[Handler], Server], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The S3 source signs with botocore and reads with our GET: S3's XML error becomes the store's message."""
    pytest.importorskip("boto3", reason="the aws extra is part of the test lock")
    from modelbundle.weights._s3 import S3Source

    error = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    server = serve(lambda handler: send(handler, 403, error, Content_Type="application/xml"))
    for name, value in {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    source = S3Source("s3://bucket/models/big.bin")
    refused = r"S3 rejected the credentials for s3://bucket \(AccessDenied\); the credentials are valid"
    with pytest.raises(AuthenticationError, match=refused), source.read(0):
        pass
    assert "X-Amz-Signature=" in server.seen[0]["path"] and server.seen[0]["path"].startswith("/bucket/models/big.bin?")
