"""``LambdaHandler``: the runtime's ASGI app, set up once per execution environment, answering Lambda events.

The app is the one ``bundle serve`` runs (``create_app``), so codecs, error bodies
and status codes are the same. Its lifespan startup (artifacts, then ``setup()``)
runs at construction, during Lambda's init phase, on an event loop that lives as
long as the execution environment; each invocation runs one request on that loop.
This is the one place the exporter imports the runtime, and only when a handler
is made (inside a function), so exporting a zip never loads FastAPI.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ModelbundleError, ServeError
from ._events import HTTPRequest, HTTPResponse, format_response, parse_event
from ._streams import check_streams, websocket_refusal

if TYPE_CHECKING:
    from ...runtime import BufferedStreamEndpoint, ServeConfig, ServiceApp

logger = logging.getLogger("modelbundle.lambda")
#: why ``/<api>/jobs`` is refused here: the queue outlives the request, and an execution environment does not
JOBS_REFUSAL = (
    "jobs need a long-running server: Lambda freezes an execution environment between invocations, so a queued "
    "job would never run; call the API directly here, or serve the bundle's image (bundle containerize)"
)


class LambdaHandler:
    """Call it with ``(event, context)``; make it with ``LambdaHandler.from_bundle(path)``.

    A streaming API is refused here, as at export, unless ``buffer_streams``: then it
    runs to its end and answers with the whole stream (``runtime.BufferedStreamEndpoint``).
    A WebSocket API is answered with a 501 error.
    """

    def __init__(self, app: ServiceApp, *, buffer_streams: bool = False) -> None:
        apis = list(app.service_cls.__apis__.values())
        check_streams(app.service_cls.__name__, [(api.name, api.streaming, api.websocket) for api in apis], buffer_streams)
        self.app = app
        self.routes = {api.name: api.route for api in apis}
        self._job_paths = tuple(route.rstrip("/") + "/jobs" for route in self.routes.values())
        self._websockets = {api.route: api.name for api in apis if api.websocket}
        self._buffer_streams = buffer_streams
        #: by route, once the service is set up
        self._buffered: dict[str, BufferedStreamEndpoint] = {}
        self._loop = asyncio.new_event_loop()
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_events: asyncio.Queue[dict[str, Any]] | None = None
        # The lifespan waits on this loop for its shutdown. Left pending at interpreter exit, it
        # would be destroyed half-run ("Task was destroyed but it is pending", a never-awaited
        # Invokers.close): so a handler not closed by then is closed at exit.
        atexit.register(self._close_at_exit)

    @classmethod
    def from_bundle(cls, path: str | Path, config: ServeConfig | None = None, *, buffer_streams: bool = False) -> LambdaHandler:
        """Verify the bundle at ``path`` against its RECORD, import its service and set it up."""
        from ...bundler import MANIFEST_FILE, BundleManifest, OpenedBundle, verify_record
        from ...runtime import create_app

        path = Path(path)
        verify_record(path)
        bundle = OpenedBundle(path, BundleManifest.model_validate_json((path / MANIFEST_FILE).read_bytes()))
        app = create_app(
            bundle.service_class(), config or lambda_config(), artifacts=bundle.artifact_loader(), version=bundle.manifest.version
        )
        handler = cls(app, buffer_streams=buffer_streams)
        handler.start()
        return handler

    def __call__(self, event: Any, context: Any = None) -> Any:
        kind, request = parse_event(event, self.routes)
        request_id = getattr(context, "aws_request_id", None)
        if request_id and request.header(b"x-request-id") is None:  # errors then name Lambda's request id
            request = HTTPRequest(
                request.method, request.path, request.query_string,
                [*request.headers, (b"x-request-id", str(request_id).encode("latin-1"))], request.body, request.client,
            )
        response = self._loop.run_until_complete(self.handle(request))
        return format_response(kind, response)

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        """Run one request through the ASGI app."""
        if self._is_jobs_path(request.path):
            request_id = (request.header(b"x-request-id") or b"").decode("latin-1")
            body = {"error": {"type": "not_implemented", "message": JOBS_REFUSAL, "request_id": request_id}}
            return HTTPResponse(501, [(b"content-type", b"application/json")], json.dumps(body).encode())
        if request.path in self._websockets:
            request_id = self.app.state.request_id(request.header(b"x-request-id")).decode()
            return websocket_refusal(self._websockets[request.path], request_id)
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        sent = False
        finished = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await finished.wait()  # the client stays until the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        buffered = self._buffered.get(request.path) if request.method == "POST" else None
        try:
            await (buffered or self.app)(request.scope(), receive, send)
        except Exception as exc:  # the app answers its own errors; this is a bug, not a user error
            logger.exception("the app raised while answering %s %s", request.method, request.path)
            body = {"error": {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}", "request_id": ""}}
            return HTTPResponse(500, [(b"content-type", b"application/json")], json.dumps(body).encode())
        finally:
            finished.set()
        return HTTPResponse(status, headers, b"".join(chunks))

    def _is_jobs_path(self, path: str) -> bool:
        path = path.rstrip("/")
        return any(path == jobs or path.startswith(jobs + "/") for jobs in self._job_paths)

    # -- lifespan ------------------------------------------------------------------------
    def start(self) -> None:
        """Run the app's lifespan startup: artifacts, then ``setup()``. Raises if it fails."""
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        if self._buffer_streams:
            from ...runtime import buffered_endpoints

            self._buffered = buffered_endpoints(self.app)

    async def _start(self) -> None:
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def send(message: Any) -> None:
            if started.done():
                return
            if message["type"] == "lifespan.startup.complete":
                started.set_result(None)
            elif message["type"] == "lifespan.startup.failed":
                started.set_exception(ServeError(message.get("message") or "startup failed"))

        events.put_nowait({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._lifespan_events = events
        self._lifespan = asyncio.ensure_future(self.app(scope, events.get, send))
        await asyncio.wait([started, self._lifespan], return_when=asyncio.FIRST_COMPLETED)
        if started.done() and started.exception() is None:
            return
        if self.app.startup_error is not None:  # a user mistake: the one-line error, not a traceback
            raise self.app.startup_error
        name = self.app.service_cls.__name__
        if self._lifespan.done() and not self._lifespan.cancelled() and self._lifespan.exception() is not None:
            error = self._lifespan.exception()
            if isinstance(error, ModelbundleError):
                raise error
            raise ServeError(f"{name} could not start: {type(error).__name__}: {error}") from error
        raise ServeError(f"{name} could not start: {started.exception()}")

    def close(self) -> None:
        """Run the lifespan shutdown (``teardown()``) and close the loop; a no-op the second time.

        Lambda freezes and then discards an execution environment without telling a
        function that has no extension, so on Lambda ``teardown()`` does not run; this
        is for tests and other hosts. A handler still open when the interpreter exits
        is closed then.
        """
        atexit.unregister(self._close_at_exit)
        if self._loop.is_closed():
            return
        try:
            if self._lifespan is not None and not self._lifespan.done() and self._lifespan_events is not None:
                self._lifespan_events.put_nowait({"type": "lifespan.shutdown"})
                self._loop.run_until_complete(asyncio.wait([self._lifespan], timeout=self.app.config.graceful_timeout + 1))
        finally:
            self._loop.close()


    def _close_at_exit(self) -> None:
        # thread pools take no new work by now: a sync teardown() runs on this thread
        self.app.hooks_inline = True
        self.close()


def lambda_config() -> ServeConfig:
    """Serving settings for Lambda: ``MODELBUNDLE_*`` variables apply as for ``bundle serve``.

    Jobs are always off; by default batching is off and access logs too: an execution environment
    gets one event at a time, so there is never a second request to batch with,
    and Lambda logs every invocation itself.
    """
    from ...runtime import ServeConfig

    flags: dict[str, Any] = {}
    for name, value in (("batching", False), ("access_log", False)):
        if not os.environ.get(f"MODELBUNDLE_{name.upper()}"):
            flags[name] = value
    # no jobs, whatever the environment says: Lambda freezes the process between events, so a
    # job runner would never run, and its filesystem outlives no execution environment
    flags["jobs"] = False
    return ServeConfig.resolve(flags)
