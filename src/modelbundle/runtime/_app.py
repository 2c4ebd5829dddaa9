"""``create_app``: the ASGI app that serves one Service class.

POSTs to an API route go straight to that API's endpoint (the hot path skips
routing; a streaming API's is a ``StreamEndpoint``, ``_stream.py``); so do Open Inference Protocol infer POSTs (``_oip.py``) and, with
``--sagemaker``, SageMaker's /invocations (``_sagemaker.py``), which share the
API's invoke and so its batcher. Everything else (health, metrics, OpenAPI,
docs, the protocol's /v2 metadata, 404/405) is a small Starlette router: no
FastAPI, whose import alone costs a third of a start-up and whose features
(dependency injection, generated OpenAPI) the runtime does not use; the OpenAPI
document is built from the Service's declarations. Every response carries
X-Request-ID. WebSocket handshakes go to the API's ``WebSocketEndpoint``
(``_websocket.py``), or are refused with an HTTP error (503 before ready, 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .. import _startup_gc
from ..errors import (
    MethodNotAllowed,
    ModelbundleError,
    NotFound,
    Overloaded,
    RequestError,
    ServeError,
)
from ..service_base import Service, bind_artifacts, build_openapi, service_graph
from ._auth import guard
from ._codec import error_body, method_not_allowed
from ._composition import LocalDependencies, split_artifacts
from ._config import ServeConfig
from ._docs import STATIC_DIR, STATIC_PREFIX, docs_html
from ._endpoint import APIEndpoint
from ._invoke import Invokers
from ._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ._metrics import Metrics
from ._oip import PREFIX as OIP_PREFIX
from ._oip import OpenInference
from ._openai import PREFIX as OPENAI_PREFIX
from ._openai import OpenAIFrontEnd, add_openai_paths
from ._sagemaker import INVOCATIONS_PATH, PING_PATH, Invocations, default_api
from ._state import ServerState
from ._stream import StreamEndpoint
from ._tracing_setup import start_tracing, traced_routes
from ._types import ASGIApp, Message, Receive, Scope, Send
from ._websocket import OpenSockets, WebSocketEndpoint, refuse_handshake
from .jobs import JobsService, add_job_paths, job_apis, job_routes

logger = logging.getLogger("modelbundle.server")
REQUEST_ID_KEY = "modelbundle.request_id"


def create_app(
    service_cls: type[Service],
    config: ServeConfig | None = None,
    state: ServerState | None = None,
    *,
    artifacts: Callable[[], dict[str, Any]] | None = None,
    version: str | None = None,
) -> ServiceApp:
    """The ASGI app for ``service_cls``; ``artifacts()`` then ``setup()`` run in its lifespan startup.

    ``version`` is the bundle's, shown in the OpenAPI document (code served directly is "dev").
    """
    return ServiceApp(service_cls, config or ServeConfig(), state or ServerState(), artifacts, version)


class ServiceApp:
    """An ASGI app serving one Service class (see ``create_app``)."""

    def __init__(
        self,
        service_cls: type[Service],
        config: ServeConfig,
        state: ServerState,
        artifacts: Callable[[], dict[str, Any]] | None = None,
        version: str | None = None,
    ) -> None:
        self.service_cls = service_cls
        self._load_artifacts = artifacts
        self.config = config
        self.state = state
        self.metrics = Metrics()
        self.graph = service_graph(service_cls)
        #: the services the entry depends on, served in this process (None for a one-service graph)
        self.dependencies = LocalDependencies(self.graph, config, self.metrics) if self.graph.composed else None
        self.service: Service | None = None
        #: why startup failed, when it is something to tell the user in one line
        self.startup_error: ModelbundleError | None = None
        self._invokers: Invokers | None = None
        self._endpoints: dict[str, ASGIApp] = {}
        #: WebSocket APIs by route, once set up
        self._websockets: dict[str, WebSocketEndpoint] = {}
        #: the open sockets' shared shutdown deadline (the server starts it: ``_server.py``)
        self.sockets = OpenSockets()
        self.openapi = build_openapi(service_cls, version)
        self.oip = OpenInference(service_cls, state)
        #: the /v1 routes of a service with ``modelbundle.openai`` declarations
        declarations = service_cls.__openai__
        self.openai = OpenAIFrontEnd(declarations, state) if declarations is not None else None
        if declarations is not None:
            add_openai_paths(self.openapi, declarations)
        self.jobs = JobsService(service_cls.name, config, may_claim=lambda: not state.draining)
        if config.jobs:
            add_job_paths(self.openapi, job_apis(service_cls.__apis__))
        #: called when setup() fails after the server started (SageMaker mode); the server sets it to stop itself
        self.on_startup_failure: Callable[[], None] = lambda: None
        #: run a sync teardown() on the event loop's thread rather than a worker thread: set when the
        #: app is stopped at interpreter exit, when Python no longer starts work on thread pools
        self.hooks_inline = False
        self.router = self._build_router()
        #: OpenTelemetry, when the OTEL_* variables ask for it (``_tracing_setup.py``); None costs nothing
        self.tracing = start_tracing(service_cls.name, os.environ)
        #: API keys, rate limit and CORS in front of everything (``_auth.py``); ``_serve`` itself when off
        entry = guard(self._serve, config, state.request_id, lambda reason: self.metrics.refused.labels(reason).inc())
        # the request's span is outermost, so a refused request is traced too
        self._entry = self.tracing.middleware(entry, traced_routes(self)) if self.tracing is not None else entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router(scope, receive, self._quiet_expected_failure(send))
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        if scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        request_id = self.state.request_id(_header(scope, b"x-request-id"))
        scope[REQUEST_ID_KEY] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        await self.router(scope, receive, send_with_id)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._websockets.get(scope["path"])
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
        request_id = self.state.request_id(_header(scope, b"x-request-id"))
        await receive()  # websocket.connect
        routes = [api.route for api in self.service_cls.__apis__.values() if api.websocket]
        if scope["path"] in routes:  # before setup() is done, or after shutdown began
            error: RequestError = Overloaded("the service is not ready", headers={"Retry-After": "1"})
        else:
            error = NotFound(f"no WebSocket API at {scope['path']}; the WebSocket APIs are {', '.join(routes) or 'none'}")
        await refuse_handshake(scope, send, error, request_id)

    # -- lifecycle ---------------------------------------------------------------------
    def _quiet_expected_failure(self, send: Send) -> Send:
        """Starlette reports a failed startup with the traceback as the message, which the server
        logs; a user mistake (a missing artifact) is told in one line instead, so it goes blank."""

        async def send_without_traceback(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.startup_error is not None:
                message = {**message, "message": ""}
            await send(message)

        return send_without_traceback

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        service = self.service_cls()
        if self.tracing is not None:  # job runs start from the lifespan's tasks, not from a request
            self.tracing.bind()
        if not self.config.sagemaker:
            await self._start(service)
            try:
                yield
            finally:
                await self._stop(service)
            return
        # SageMaker pings the container while it starts: serve at once (/ping is 503 until
        # setup() is done) and set up in the background; a failed setup stops the server
        starting = asyncio.create_task(self._start_in_background(service))
        try:
            yield
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            if self.service is not None:
                await self._stop(service)

    async def _start(self, service: Service) -> None:
        try:
            await self._set_up(service)
        except BaseException:
            self.jobs.close()  # the lock on the jobs folder goes with the failed start
            raise
        finally:  # ready or failed, start-up is over
            _startup_gc.resume_after_startup()
        self.state.mark_ready()
        logger.info("%s is ready: %s", self.service_cls.name, self._api_list())

    async def _set_up(self, service: Service) -> None:
        # a wrong --default-api fails before the artifacts load, not after
        http_apis = {name: api for name, api in self.service_cls.__apis__.items() if not api.websocket}
        # /invocations answers the HTTP APIs by name and the OpenAI routes by path (see _sagemaker.py)
        invocable = [*http_apis, *(self.openai.post_paths if self.openai is not None else [])]
        default = default_api(invocable, self.config.default_api) if self.config.sagemaker else None
        if self.config.jobs:
            try:  # a bad --jobs-dir fails before the artifacts load too
                await asyncio.to_thread(self.jobs.open)
            except ModelbundleError as exc:
                self.startup_error = exc
                raise
        loaded: dict[str, Any] = {}
        if self._load_artifacts is not None:
            try:
                loaded = await asyncio.to_thread(self._load_artifacts)
            except ModelbundleError as exc:  # a user mistake (missing file, version mismatch): one line
                self.startup_error = exc
                raise
        per_service = split_artifacts(self.graph, loaded)
        bind_artifacts(service, per_service[self.graph.entry.name])
        if self.dependencies is not None:  # dependencies first, each set up once; then the entry
            await self.dependencies.start(per_service, _call_hook)
            self.dependencies.connect(service, self.graph.entry)
        await _call_hook(service.setup)
        self.service = service
        self._invokers = Invokers(service, self.config, self.metrics)
        by_name: dict[str, ASGIApp] = {}
        invokes = {}
        for api in self.service_cls.__apis__.values():
            if api.websocket:  # called once per socket, by its endpoint
                self._websockets[api.route] = WebSocketEndpoint(
                    api, getattr(service, api.name), self.metrics.for_api(api.name), self.config, self.state, self.sockets
                )
                continue
            invoke, metrics = self._invokers.build(api), self.metrics.for_api(api.name)
            invokes[api.name] = invoke
            endpoint_cls = StreamEndpoint if api.streaming else APIEndpoint
            by_name[api.name] = self._endpoints[api.route] = endpoint_cls(api, invoke, metrics, self.config, self.state)
            # Open Inference Protocol infer paths share the invoke, so they join the same batcher
            self._endpoints.update(self.oip.endpoints(api, invoke, metrics, self.config))
        if self.openai is not None:
            openai_endpoints = self.openai.start(service, self.config, self.metrics)
            self._endpoints.update(openai_endpoints)
            by_name.update(openai_endpoints)
        if default is not None:
            self._endpoints[INVOCATIONS_PATH] = Invocations(by_name, default, self.state)
        # jobs call the endpoints' invoke, so a batchable API's jobs join its batcher
        self.jobs.start({api.name: (api, invokes[api.name]) for api in job_apis(self.service_cls.__apis__)})

    async def _start_in_background(self, service: Service) -> None:
        try:
            await self._start(service)
        except asyncio.CancelledError:
            raise
        except ModelbundleError as exc:  # a user mistake: the one-line error
            self.startup_error = exc
            self.on_startup_failure()
        except BaseException as exc:
            if self.startup_error is None:
                logger.exception("%s.setup() failed", self.service_cls.__name__)
                self.startup_error = ServeError(f"setup() raised {type(exc).__name__}: {exc}")
            self.on_startup_failure()

    async def _stop(self, service: Service) -> None:
        try:
            await self._stop_service(service)
        finally:
            if self.tracing is not None:  # the spans still buffered go out before the process ends
                if self.hooks_inline:
                    self.tracing.shutdown()
                else:
                    await asyncio.to_thread(self.tracing.shutdown)

    async def _stop_service(self, service: Service) -> None:
        self.state.mark_stopping()
        assert self._invokers is not None
        # jobs first: running ones get the graceful timeout, then go back to the queue
        await self.jobs.stop(self.config.graceful_timeout, inline=self.hooks_inline)
        try:  # uvicorn already waited graceful_timeout for requests; a stuck model must not hang the exit
            await asyncio.wait_for(self._invokers.close(), self.config.graceful_timeout + 1)
        except TimeoutError:
            logger.error("a batch of %s was still running at shutdown; leaving it", self.service_cls.name)
        if self.openai is not None:
            await self.openai.close()
        self._endpoints.clear()
        self._websockets.clear()
        try:
            await _call_hook(service.teardown, inline=self.hooks_inline)
        except Exception:
            logger.exception("%s.teardown() raised", self.service_cls.__name__)
        if self.dependencies is not None:  # after their caller, in the reverse order of set-up
            await self.dependencies.stop(functools.partial(_call_hook, inline=self.hooks_inline), self.config.graceful_timeout)

    # -- everything but the APIs ----------------------------------------------------------
    def _build_router(self) -> Starlette:
        async def not_ready(request: Request) -> Response:
            # an API route before startup finished, or after shutdown began
            raise Overloaded("the service is not ready", headers={"Retry-After": "1"})

        async def livez(request: Request) -> Response:
            return JSONResponse({"status": "alive"})

        async def readyz(request: Request) -> Response:
            state = self.state
            if state.ready:
                return JSONResponse({"status": "ready"})
            reason = "draining" if state.draining else "starting" if not state.setup_done else "waiting for other workers"
            return JSONResponse({"status": reason}, status_code=503, headers={"Retry-After": "1"})

        async def ping(request: Request) -> Response:
            if self.state.ready:
                return Response(status_code=200)
            return Response(status_code=503, headers={"Retry-After": "1"})

        async def metrics(request: Request) -> Response:
            return Response(self.metrics.render(), media_type=METRICS_CONTENT_TYPE)

        async def openapi(request: Request) -> Response:
            return JSONResponse(self.openapi)

        async def docs(request: Request) -> Response:
            return HTMLResponse(docs_html(self.service_cls.name))

        async def oip_server_metadata(request: Request) -> Response:
            return JSONResponse(self.oip.server_metadata())

        async def upgrade_required(request: Request) -> Response:
            # a plain GET of a WebSocket API (a browser's address bar, curl without the upgrade)
            error = RequestError(
                f"{request.url.path} is a WebSocket API: connect with a WebSocket client (ws://host:port{request.url.path})",
                headers={"Upgrade": "websocket", "Connection": "Upgrade"},
            )
            error.status_code, error.error_type = 426, "upgrade_required"
            raise error

        routes: list[BaseRoute] = [
            Route(api.route, upgrade_required, methods=["GET"]) if api.websocket else Route(api.route, not_ready, methods=["POST"])
            for api in self.service_cls.__apis__.values()
        ]
        if self.config.sagemaker:
            routes += [Route(INVOCATIONS_PATH, not_ready, methods=["POST"]), Route(PING_PATH, ping, methods=["GET"])]
        if self.config.jobs:
            for api in job_apis(self.service_cls.__apis__):
                routes += job_routes(api, self.jobs, self.config)
        routes += [
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="docs-static"),
            Route(OIP_PREFIX, oip_server_metadata, methods=["GET"]),
            Mount(OIP_PREFIX, self.oip.app(), name="open-inference-protocol"),
        ]
        if self.openai is not None:
            routes.append(Mount(OPENAI_PREFIX, self.openai.app(), name="openai"))

        async def request_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, RequestError)
            return _error_response(request, exc)

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, StarletteHTTPException)
            # Starlette's headers (a 405's Allow, which RFC 9110 requires) go out with our JSON body
            headers = dict(exc.headers or {})
            if exc.status_code == 404:
                error: RequestError = NotFound(f"no endpoint at {request.url.path}; the APIs are {self._api_list()}")
            elif exc.status_code == 405:
                message, headers = method_not_allowed(request.method, request.url.path, headers)
                error = MethodNotAllowed(message, headers=headers)
            else:
                error = RequestError(str(exc.detail), headers=headers)
                error.status_code = exc.status_code
            return _error_response(request, error)

        return Starlette(
            routes=routes,
            lifespan=self.lifespan,
            exception_handlers={RequestError: request_error, StarletteHTTPException: http_error},
        )

    def _api_list(self) -> str:
        routes = [f"{'WebSocket' if a.websocket else 'POST'} {a.route}" for a in self.service_cls.__apis__.values()]
        if self.openai is not None:
            routes += [f"POST {path}" for path in self.openai.post_paths]
        return ", ".join(routes) or "none"


def _error_response(request: Request, error: RequestError) -> Response:
    request_id = request.scope.get(REQUEST_ID_KEY, "")
    return Response(
        error_body(error.error_type, error.message, request_id),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers,
    )


async def _call_hook(hook: Any, *, inline: bool = False) -> None:
    """Run setup()/teardown(): await it if async, else in a thread so signals stay responsive."""
    if inspect.iscoroutinefunction(hook):
        await hook()
    else:
        result = hook() if inline else await asyncio.to_thread(hook)
        if inspect.isawaitable(result):
            await result


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
