"""The Open Inference Protocol (KServe V2) over REST, beside the native routes.

Every API whose inputs and output are numpy arrays is a *model* named after
the API. ``POST /v2/models/<api>/infer`` is served by ``InferEndpoint`` on the
raw-ASGI path, like a native POST, and calls the very same invoke callable:
a batchable API's infer requests join its micro-batcher, batching with native
requests under the same overload and timeout rules. Health, metadata and the
errors of unknown paths come from a small Starlette app mounted at ``/v2``.

Other APIs (pydantic, text, images...) are not models here: their ``/v2``
paths answer 404 with a message that names the native route instead.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._version import __version__
from ..errors import (
    BadRequest,
    InvalidInput,
    ModelError,
    Overloaded,
    RequestError,
    UnsupportedMediaType,
)
from ..service_base import APIMethod, Service
from ._codec import OFFLOAD_BYTES, method_not_allowed
from ._config import ServeConfig
from ._disconnect import Abandoned
from ._endpoint import APIEndpoint
from ._metrics import APIMetrics
from ._state import ServerState
from ._types import Invoke, Receive, Scope, Send

if TYPE_CHECKING:
    from ._oip_codec import InferRequest, Output

logger = logging.getLogger("modelbundle.server")

PREFIX = "/v2"
SERVER_NAME = "modelbundle"
EXTENSIONS = ("binary_tensor_data",)
#: the version every model reports (and the only one the /versions/<v>/ paths accept)
DEFAULT_MODEL_VERSION = "1"
#: the name of the one output tensor of a model
OUTPUT_NAME = "output"
PLATFORM = "modelbundle"
INFERENCE_HEADER = b"inference-header-content-length"
JSON_MEDIA_TYPE = b"application/json"
BINARY_MEDIA_TYPE = b"application/octet-stream"
# the content types a browser may POST cross-origin without a preflight: never taken as a request
_CORS_SIMPLE = frozenset({b"application/x-www-form-urlencoded", b"multipart/form-data", b"text/plain"})


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output tensor: dtype and shape as the API declares them (None: any)."""

    name: str
    dtype: Any
    shape: tuple[int, ...] | None

    def metadata(self) -> dict[str, Any]:
        from ._oip_codec import datatype_of

        # an undeclared dtype takes any numeric datatype; FP64 is what JSON numbers become natively
        datatype = datatype_of(self.dtype) if self.dtype is not None else "FP64"
        return {"name": self.name, "datatype": datatype, "shape": list(self.shape) if self.shape is not None else [-1]}


@dataclass(frozen=True)
class TensorModel:
    """One tensor API seen as a protocol model."""

    api: APIMethod
    version: str
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    required: frozenset[str]

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.api.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [spec.metadata() for spec in self.inputs],
            "outputs": [self.output.metadata()],
        }

    def arguments(self, request: InferRequest) -> dict[str, Any]:
        """The API's keyword arguments from the request's input tensors, checked against the declaration."""
        from ._oip_codec import as_declared

        specs = {spec.name: spec for spec in self.inputs}
        kwargs = {}
        for tensor in request.inputs:
            spec = specs.get(tensor.name)
            if spec is None:
                raise InvalidInput(f"unknown input '{tensor.name}'; {self.api.name} takes {_names(specs)}")
            kwargs[tensor.name] = as_declared(tensor, spec.dtype, spec.shape)
        missing = sorted(self.required - kwargs.keys())
        if missing:
            raise InvalidInput(f"missing input '{missing[0]}'; {self.api.name} takes {_names(specs)}")
        return kwargs

    def outputs(self, request: InferRequest, array: Any) -> list[Output]:
        from ._oip_codec import Output

        if request.outputs is None:
            return [Output(OUTPUT_NAME, array, request.binary_output)]
        selected = []
        for wanted in request.outputs:
            if wanted.name != OUTPUT_NAME:
                raise BadRequest(f"unknown output '{wanted.name}'; {self.api.name} has one output, '{OUTPUT_NAME}'")
            binary = request.binary_output if wanted.binary is None else wanted.binary
            selected.append(Output(OUTPUT_NAME, array, binary))
        return selected


def tensor_model(api: APIMethod, version: str) -> TensorModel | str:
    """``api`` as a protocol model, or why it cannot be one."""
    if api.streaming:  # the protocol's infer answers with one set of tensors
        return "it streams its answer, and the protocol has no streaming responses"
    numpy_array = _numpy_adapter_class()
    if numpy_array is None:
        return "its inputs and output are not numpy arrays"
    for param in api.params:
        if not isinstance(param.adapter, numpy_array):
            return f"its input '{param.name}' is {param.adapter.describe()}, not a numpy array"
    if not isinstance(api.output, numpy_array):
        return f"it returns {api.output.describe()}, not a numpy array"
    inputs = tuple(TensorSpec(p.name, p.adapter.dtype, p.adapter.shape) for p in api.params)  # type: ignore[attr-defined]
    output = TensorSpec(OUTPUT_NAME, api.output.dtype, api.output.shape)  # type: ignore[attr-defined]
    return TensorModel(api, version, inputs, output, frozenset(p.name for p in api.params if p.required))


def _numpy_adapter_class() -> type | None:
    # an API can only hold a NumpyArray adapter once numpy is imported: do not import it for a service without arrays
    if "numpy" not in sys.modules:
        return None
    from ..adapters import NumpyArray

    return NumpyArray  # type: ignore[no-any-return]


class OpenInference:
    """The protocol front-end of one Service class: its models, routes and infer endpoints."""

    def __init__(self, service_cls: type[Service], state: ServerState, version: str = DEFAULT_MODEL_VERSION) -> None:
        self.state = state
        self.version = version
        self.models: dict[str, TensorModel] = {}
        #: non-tensor APIs: why they are not models, and their native route
        self.refused: dict[str, tuple[str, str]] = {}
        for api in service_cls.__apis__.values():
            model = tensor_model(api, version)
            if isinstance(model, TensorModel):
                self.models[api.name] = model
            else:
                self.refused[api.name] = (model, api.route)

    def infer_paths(self, name: str) -> tuple[str, str]:
        return f"{PREFIX}/models/{name}/infer", f"{PREFIX}/models/{name}/versions/{self.version}/infer"

    def endpoints(
        self, api: APIMethod, invoke: Invoke, metrics: APIMetrics, config: ServeConfig
    ) -> dict[str, InferEndpoint]:
        """The raw-ASGI infer endpoints of ``api`` by path (none for a non-tensor API)."""
        model = self.models.get(api.name)
        if model is None:
            return {}
        endpoint = InferEndpoint(model, invoke, metrics, config, self.state)
        return dict.fromkeys(self.infer_paths(api.name), endpoint)

    # -- the Starlette app for everything but a live infer -----------------------------------
    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def app(self) -> Starlette:
        """Mounted at /v2: health, metadata, and the errors of infer paths the fast path did not take."""
        routes = [
            Route("/", self._server_metadata, methods=["GET"]),
            Route("/health/live", self._live, methods=["GET"]),
            Route("/health/ready", self._ready, methods=["GET"]),
            Route("/models/{name}", self._model_metadata, methods=["GET"]),
            Route("/models/{name}/ready", self._model_ready, methods=["GET"]),
            Route("/models/{name}/infer", self._infer_unavailable, methods=["POST"]),
            Route("/models/{name}/versions/{version}", self._model_metadata, methods=["GET"]),
            Route("/models/{name}/versions/{version}/ready", self._model_ready, methods=["GET"]),
            Route("/models/{name}/versions/{version}/infer", self._infer_unavailable, methods=["POST"]),
        ]
        handlers: Mapping[Any, Callable[..., Any]] = {
            HTTPException: self._http_error,
            RequestError: self._request_error,
        }
        return Starlette(routes=routes, exception_handlers=handlers)

    async def _server_metadata(self, request: Request) -> Response:
        return JSONResponse(self.server_metadata())

    async def _live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def _ready(self, request: Request) -> Response:
        if self.state.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False}, status_code=503, headers={"Retry-After": "1"})

    async def _model_metadata(self, request: Request) -> Response:
        return JSONResponse(self._model(request).metadata())

    async def _model_ready(self, request: Request) -> Response:
        model = self._model(request)
        if self.state.ready:
            return JSONResponse({"name": model.api.name, "ready": True})
        return JSONResponse({"name": model.api.name, "ready": False}, status_code=503, headers={"Retry-After": "1"})

    async def _infer_unavailable(self, request: Request) -> Response:
        model = self._model(request)  # an unknown model or version: 404
        if self.state.draining:
            raise Overloaded("the server is shutting down", headers={"Retry-After": "1"})
        raise Overloaded(f"{model.api.name} is not ready", headers={"Retry-After": "1"})

    def _model(self, request: Request) -> TensorModel:
        name: str = request.path_params["name"]
        version: str | None = request.path_params.get("version")
        model = self.models.get(name)
        if model is None:
            if name in self.refused:
                reason, route = self.refused[name]
                raise _NotAModel(
                    f"API '{name}' is not served over the Open Inference Protocol because {reason}; use POST {route}"
                )
            raise _NotAModel(f"unknown model '{name}'; the models are {_names(self.models)}")
        if version is not None and version != self.version:
            raise _NotAModel(f"model '{name}' has no version '{version}'; its version is '{self.version}'")
        return model

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = exc.headers
        if exc.status_code == 405:
            message, headers = method_not_allowed(request.method, request.url.path, exc.headers)
        elif exc.status_code == 404:
            message = f"no Open Inference Protocol endpoint at {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)

    async def _request_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=exc.headers)


class _NotAModel(RequestError):
    """No such model (or version) under /v2/models."""

    status_code = 404
    error_type = "not_found"


def _names(items: Mapping[str, Any]) -> str:
    return ", ".join(f"'{name}'" for name in items) or "none"


class InferEndpoint(APIEndpoint):
    """Serves ``POST /v2/models/<api>[/versions/<v>]/infer`` with the invoke callable of the native route."""

    def __init__(self, model: TensorModel, invoke: Invoke, metrics: APIMetrics, config: ServeConfig, state: ServerState) -> None:
        super().__init__(model.api, invoke, metrics, config, state)
        self.model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from ._oip_codec import error_body

        started = time.perf_counter()
        content_type = b""
        given_id = content_length = header_length = encoding = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                content_length = value
            elif key == INFERENCE_HEADER:
                header_length = value
            elif key == b"x-request-id":
                given_id = value
            elif key == b"content-encoding":
                encoding = value
        state = self._state
        request_id = state.request_id(given_id)
        extra_headers: dict[str, str] = {}
        json_length: int | None = None
        admitted = False
        try:
            self._check_capacity()
            media_type = content_type.split(b";", 1)[0].strip().lower()
            if media_type in _CORS_SIMPLE:
                raise UnsupportedMediaType(
                    f"inference requests are not taken as {media_type.decode('latin-1')}; "
                    "send application/json, or application/octet-stream with Inference-Header-Content-Length"
                )
            if encoding is not None and encoding.strip().lower() != b"identity":
                raise UnsupportedMediaType(
                    f"compressed inference requests (Content-Encoding: {encoding.decode('latin-1')}) are not supported; "
                    "send them uncompressed"
                )
            if header_length is not None and not header_length.isdigit():
                raise BadRequest("Inference-Header-Content-Length must be a number of bytes")
            body = await self._read_body(receive, content_length)
            admitted = self._admit()
            offload = len(body) > OFFLOAD_BYTES
            length = int(header_length) if header_length is not None else None
            if offload:
                request, kwargs = await asyncio.to_thread(self._decode, body, length)
            else:
                request, kwargs = self._decode(body, length)
            result = await self._call(kwargs, receive)
            if offload:
                payload, json_length = await asyncio.to_thread(self._encode_response, request, result, request_id)
            else:
                payload, json_length = self._encode_response(request, result, request_id)
            media = BINARY_MEDIA_TYPE if json_length is not None else JSON_MEDIA_TYPE
            status = 200
        except Abandoned:  # the client left while its answer was computed: no one to answer
            self._metrics.cancelled.inc()
            return
        except RequestError as exc:
            status, extra_headers = exc.status_code, exc.headers
            payload, media = error_body(exc.message), JSON_MEDIA_TYPE
        except Exception as exc:
            logger.exception("request %s: %s raised", request_id.decode(), self.api.name)
            status, payload, media = 500, error_body(f"{self.api.name} raised {type(exc).__name__}: {exc}"), JSON_MEDIA_TYPE
        finally:
            if admitted:
                self._release()

        binary = [(INFERENCE_HEADER, str(json_length).encode())] if json_length is not None and status == 200 else []
        await self._respond(send, status, media, payload, request_id, extra_headers, started, *binary)

    def _decode(self, body: bytes, header_length: int | None) -> tuple[InferRequest, dict[str, Any]]:
        from ._oip_codec import parse_request

        request = parse_request(body, header_length)
        kwargs = self.model.arguments(request)
        # an unknown output is the client's mistake: refuse it before the model runs
        self.model.outputs(request, None)
        return request, kwargs

    def _encode_response(self, request: InferRequest, result: Any, request_id: bytes) -> tuple[bytes, int | None]:
        import numpy as np

        from ._oip_codec import encode_response

        try:
            outputs = self.model.outputs(request, np.asarray(result))
            return encode_response(self.api.name, self.model.version, request.id, outputs)
        except RequestError:
            raise
        except Exception as exc:
            logger.exception("request %s: the result of %s could not be encoded", request_id.decode(), self.api.name)
            raise ModelError(
                f"{self.api.name} returned {type(result).__name__}, which cannot be sent as a protocol tensor: {exc}"
            ) from exc
