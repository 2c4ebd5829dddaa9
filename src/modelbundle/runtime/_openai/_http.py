"""Reading an OpenAI request and answering it: JSON bodies, OpenAI-shaped errors, capacity."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from ...errors import RequestError
from .._body import BodyLimits, read_body
from .._codec import request_head
from .._config import ServeConfig
from .._metrics import APIMetrics
from .._state import ServerState
from .._types import Receive, Scope, Send
from ._errors import OpenAIError, error_json, from_request_error, from_validation_error

B = TypeVar("B", bound=BaseModel)
JSON = b"application/json"


class Exchange:
    """One request/response of an OpenAI route: its id, its body, and the capacity slot it holds."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, state: ServerState, config: ServeConfig, metrics: APIMetrics) -> None:
        self.receive = receive
        self.send = send
        self.state = state
        self.config = config
        self.metrics = metrics
        self.started = time.perf_counter()
        _, _, self._content_length, given_id = request_head(scope["headers"])
        self.request_id = state.request_id(given_id)
        self.admitted = False
        #: a stream's 200 went out: errors now go into the stream
        self.answered_stream = False

    async def read(self, model: type[B]) -> B:
        """The body as ``model``; an OpenAIError (400, 413, 429...) instead."""
        self._check_capacity()
        limits = BodyLimits(self.config.max_body_size, self.config.body_timeout, self.config.body_min_rate)
        body = await read_body(self.receive, self._content_length, limits)
        self._check_capacity()
        self.admitted = True
        self.state.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise OpenAIError(400, f"the body is not JSON: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise OpenAIError(400, "the body must be a JSON object", code="invalid_json")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def _check_capacity(self) -> None:
        if self.state.draining:
            raise OpenAIError(503, "the server is shutting down", code="unavailable", headers={"Retry-After": "1"})
        if self.state.in_flight >= self.config.max_concurrency:
            raise OpenAIError(
                429, f"more than {self.config.max_concurrency} requests in flight; retry later", code="rate_limit_exceeded", headers={"Retry-After": "1"}
            )

    def release(self) -> None:
        if self.admitted:
            self.admitted = False
            self.state.in_flight -= 1
            self.metrics.in_flight.dec()

    async def respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        raw = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), (b"x-request-id", self.request_id)]
        raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items())
        await self.send({"type": "http.response.start", "status": status, "headers": raw})
        await self.send({"type": "http.response.body", "body": body})
        self.metrics.observe_request(status, time.perf_counter() - self.started)

    async def respond_json(self, value: Any) -> None:
        await self.respond(200, orjson.dumps(value))

    async def respond_error(self, error: RequestError) -> None:
        openai_error = from_request_error(error)
        await self.respond(openai_error.status_code, error_json(openai_error), openai_error.headers)
