"""``OpenAIFrontEnd``: the ``/v1`` routes of a Service that declares ``modelbundle.openai`` methods.

POST routes are ASGI endpoints the app calls directly (as it does its APIs); the model
list is a small Starlette app mounted at ``/v1``, which also answers unknown ``/v1``
paths, and POSTs before the service is ready, in OpenAI's error shape.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...openai import OpenAIDeclarations
from ...service_base import Service
from .._config import ServeConfig
from .._generation import StepScheduler
from .._metrics import GenerationMetrics, Metrics
from .._state import ServerState
from .._types import ASGIApp
from ._embedder import EmbeddingBatcher
from ._embeddings import EmbeddingsEndpoint
from ._errors import OpenAIError, error_json, model_not_found
from ._generate import GenerateEndpoint, Hooks
from ._shapes import model_card

PREFIX = "/v1"
CHAT_PATH = PREFIX + "/chat/completions"
COMPLETIONS_PATH = PREFIX + "/completions"
EMBEDDINGS_PATH = PREFIX + "/embeddings"


class OpenAIFrontEnd:
    """The /v1 routes of one Service class; ``start()`` binds them to the set-up service."""

    def __init__(self, declarations: OpenAIDeclarations, state: ServerState) -> None:
        self.declarations = declarations
        self.state = state
        self.created = int(time.time())
        self.models = {model: owned_by for model, owned_by in declarations.models}
        self._scheduler: StepScheduler | None = None
        self._embedder: EmbeddingBatcher | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def post_paths(self) -> list[str]:
        d = self.declarations
        return ([CHAT_PATH, COMPLETIONS_PATH] if d.generate else []) + ([EMBEDDINGS_PATH] if d.embeddings else [])

    @property
    def scheduler(self) -> StepScheduler | None:
        return self._scheduler

    def start(self, service: Service, config: ServeConfig, metrics: Metrics) -> dict[str, ASGIApp]:
        """The POST endpoints, by path, bound to ``service``."""
        import asyncio

        d = self.declarations
        # steps run one at a time per model, embeddings likewise: a thread each keeps them off the API threads
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="modelbundle-openai")
        pool = self._pool

        def run_in_thread(function: Any, *args: Any) -> Any:
            return asyncio.get_running_loop().run_in_executor(pool, function, *args)

        hooks = Hooks(
            getattr(service, d.chat_template) if d.chat_template else None,
            getattr(service, d.tokenize) if d.tokenize else None,
        )
        served = list(self.models)
        endpoints: dict[str, ASGIApp] = {}
        if d.generate is not None and d.step is not None:
            size = d.generate.max_batch_size if config.step_batching else 1
            self._scheduler = StepScheduler(
                getattr(service, d.step),
                is_async=d.step_is_async,
                max_batch_size=size,
                metrics=GenerationMetrics(metrics, d.generate.model),
                run_in_thread=run_in_thread,
            )
            for chat, path in ((True, CHAT_PATH), (False, COMPLETIONS_PATH)):
                endpoints[path] = GenerateEndpoint(
                    chat, d.generate, self._scheduler, hooks, served, config, self.state, metrics.for_api(path.removeprefix("/"))
                )
        if d.embeddings is not None and d.embed is not None:
            size = d.embeddings.max_batch_size if config.batching else 1
            self._embedder = EmbeddingBatcher(getattr(service, d.embed), is_async=d.embed_is_async, max_batch_size=size, run_in_thread=run_in_thread)
            endpoints[EMBEDDINGS_PATH] = EmbeddingsEndpoint(
                d.embeddings, self._embedder, hooks, served, config, self.state, metrics.for_api(EMBEDDINGS_PATH.removeprefix("/"))
            )
        return endpoints

    async def close(self) -> None:
        if self._scheduler is not None:
            await self._scheduler.close()
        if self._embedder is not None:
            await self._embedder.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def app(self) -> Starlette:
        """GET /v1/models and /v1/models/{id}; the POST routes' answer before the service is ready."""

        async def list_models(request: Request) -> Response:
            data = [model_card(model, owned_by, self.created) for model, owned_by in self.models.items()]
            return JSONResponse({"object": "list", "data": data})

        async def retrieve_model(request: Request) -> Response:
            model = request.path_params["model"]
            if model not in self.models:
                return _error(model_not_found(model, list(self.models)))
            return JSONResponse(model_card(model, self.models[model], self.created))

        async def not_ready(request: Request) -> Response:
            return _error(OpenAIError(503, "the service is not ready", code="unavailable", headers={"Retry-After": "1"}))

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, StarletteHTTPException)
            if exc.status_code == 405:
                return _error(OpenAIError(405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed", headers=dict(exc.headers or {})))
            paths = ", ".join(["GET /v1/models", *(f"POST {p}" for p in self.post_paths)])
            return _error(OpenAIError(404, f"no route at {request.url.path}; the /v1 routes are {paths}", code="unknown_url"))

        routes = [
            Route("/models", list_models, methods=["GET"]),
            Route("/models/{model:path}", retrieve_model, methods=["GET"]),
            *(Route(path.removeprefix(PREFIX), not_ready, methods=["POST"]) for path in self.post_paths),
        ]
        return Starlette(routes=routes, exception_handlers={StarletteHTTPException: http_error})


def _error(error: OpenAIError) -> Response:
    return Response(error_json(error), status_code=error.status_code, media_type="application/json", headers=error.headers)
