"""``POST /v1/embeddings``: texts in, vectors out, through the model's micro-batcher.

``encoding_format="base64"`` sends each vector as base64 of its little-endian float32
bytes, as OpenAI does (its client decodes that back to floats).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from ...errors import RequestError
from ...openai import EmbeddingsOptions
from .._config import ServeConfig
from .._deadline import within
from .._disconnect import unless_gone
from .._metrics import APIMetrics
from .._state import ServerState
from .._types import Receive, Scope, Send
from ._embedder import EmbeddingBatcher
from ._errors import OpenAIError, model_not_found
from ._generate import Hooks
from ._http import Exchange
from ._requests import EmbeddingRequest


class EmbeddingsEndpoint:
    def __init__(
        self,
        options: EmbeddingsOptions,
        batcher: EmbeddingBatcher,
        hooks: Hooks,
        served: list[str],
        config: ServeConfig,
        state: ServerState,
        metrics: APIMetrics,
    ) -> None:
        self.options = options
        self.batcher = batcher
        self.hooks = hooks
        self.served = served
        self.config = config
        self.state = state
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, receive, send, self.state, self.config, self.metrics)
        try:
            request = await exchange.read(EmbeddingRequest)
            if request.model != self.options.model:
                raise model_not_found(request.model, self.served)
            if request.dimensions is not None and not self.options.dimensions:
                raise OpenAIError(400, f"{self.options.model} does not take dimensions", param="dimensions", code="invalid_value")
            texts = request.texts
            if not texts:
                raise OpenAIError(400, "input must hold at least one text", param="input", code="invalid_value")
            vectors = await unless_gone(within(self.config.timeout, request.model, self.batcher.embed(texts, request.dimensions)), receive)
            if vectors is None:
                self.metrics.cancelled.inc()
                return
            tokens = sum([await self.hooks.count(text) for text in texts])
            await exchange.respond_json(_answer(request, vectors, tokens))
        except RequestError as exc:
            await exchange.respond_error(exc)
        finally:
            exchange.release()


def _answer(request: EmbeddingRequest, vectors: list[list[float]], tokens: int) -> dict[str, Any]:
    def encode(vector: list[float]) -> list[float] | str:
        if request.encoding_format == "float":
            return vector
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")

    data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": request.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
