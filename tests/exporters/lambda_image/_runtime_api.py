"""A small Lambda Runtime API (version 2018-06-01) on the host, standing in for the Lambda service.

The AWS Lambda Runtime Interface Emulator is a Go binary from GitHub that no
package index here ships, so the tests serve the Runtime API themselves: the
test queues an event, the real ``awslambdaric`` in the container fetches it
with ``GET /runtime/invocation/next`` and posts the handler's answer to
``/runtime/invocation/{id}/response`` (or ``/error``); a failed init posts to
``/runtime/init/error``. Only what the client calls is served.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


class RuntimeAPI:
    """Start it, point ``AWS_LAMBDA_RUNTIME_API`` at ``address``, then ``invoke(event)``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.results: dict[str, queue.Queue[tuple[str, Any]]] = {}
        self.init_errors: list[Any] = []
        self.next_calls = 0
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: Any, timeout: float = 120.0) -> tuple[str, Any]:
        """("response", payload) or ("error", error document) for one event."""
        request_id = str(uuid.uuid4())
        answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.results[request_id] = answers
        self.events.put((request_id, event))
        try:
            return answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer to {request_id} within {timeout} s (init errors: {self.init_errors})") from None

    def next_event(self) -> tuple[str, Any] | None:
        while not self._stopping.is_set():
            try:
                return self.events.get(timeout=0.2)
            except queue.Empty:
                continue
        return None


def _handler(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the client keeps one connection open

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._answer(404, {"errorMessage": f"no {self.path}"})
                return
            api.next_calls += 1
            item = api.next_event()
            if item is None:
                self._answer(500, {"errorMessage": "shutting down"})
                return
            request_id, event = item
            self._answer(200, event, {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 60) * 1000)),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:iris",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            })  # fmt: skip

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            payload = json.loads(body) if body else None
            parts = self.path[len(PREFIX):].strip("/").split("/")
            if parts == ["init", "error"]:
                api.init_errors.append(payload)
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error") and parts[1] in api.results:
                api.results[parts[1]].put((parts[2], payload))
            else:
                self._answer(404, {"errorMessage": f"no {self.path}"})
                return
            self._answer(202, {"status": "OK"})

        def _answer(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
