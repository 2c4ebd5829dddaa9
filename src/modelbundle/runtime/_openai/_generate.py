"""``POST /v1/chat/completions`` and ``POST /v1/completions``: generations through the step scheduler.

A request's ``n`` choices (times its prompts, for completions) are sequences of the
model's scheduler, sharing one queue of deltas. Streaming: the 200 waits for the
first delta (a step that fails at once is a plain 500), then each delta is one SSE
chunk, each choice ends with a chunk carrying its ``finish_reason``, the usage chunk
follows if asked for, then ``data: [DONE]``. The client leaving (``http.disconnect``)
cancels every sequence of the request: they leave the batch at the next step.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from ...errors import ModelError, RequestError
from ...openai import GenerateOptions, Message, Sequence, default_chat_template
from .._config import ServeConfig
from .._deadline import within
from .._disconnect import wait_for_disconnect
from .._generation import Delta, Generation, StepScheduler
from .._metrics import APIMetrics
from .._state import ServerState
from .._types import Receive, Scope, Send
from ._errors import OpenAIError, error_json, from_request_error, model_not_found
from ._http import Exchange
from ._requests import ChatCompletionRequest, CompletionRequest
from ._shapes import Answer

logger = logging.getLogger("modelbundle.server")
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_DONE = b"data: [DONE]\n\n"


class Hooks:
    """The service's prompt hooks, bound: chat template and tokenizer (each may be sync or async)."""

    def __init__(self, chat_template: Callable[..., Any] | None, tokenize: Callable[..., Any] | None) -> None:
        self._template = chat_template or default_chat_template
        self._tokenize = tokenize

    async def render(self, messages: list[Message]) -> str:
        prompt = await _maybe_await(self._template(messages))
        if not isinstance(prompt, str):
            raise ModelError(f"the chat template returned {type(prompt).__name__}; it returns the prompt as a str")
        return prompt

    async def count(self, prompt: str | list[int]) -> int:
        if not isinstance(prompt, str):
            return len(prompt)  # token ids
        if self._tokenize is None:
            return len(prompt.split())
        return len(await _maybe_await(self._tokenize(prompt)))


class GenerateEndpoint:
    """Serves chat (``chat=True``) or text completions for the model of one ``@openai.generate``."""

    def __init__(
        self,
        chat: bool,
        options: GenerateOptions,
        scheduler: StepScheduler,
        hooks: Hooks,
        served: list[str],
        config: ServeConfig,
        state: ServerState,
        metrics: APIMetrics,
    ) -> None:
        self.chat = chat
        self.options = options
        self.scheduler = scheduler
        self.hooks = hooks
        self.served = served
        self.config = config
        self.state = state
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, receive, send, self.state, self.config, self.metrics)
        try:
            request: ChatCompletionRequest | CompletionRequest = await exchange.read(ChatCompletionRequest if self.chat else CompletionRequest)
            if request.model != self.options.model:
                raise model_not_found(request.model, self.served)
            if request.n > self.options.max_n:
                raise OpenAIError(400, f"n must be at most {self.options.max_n} for {self.options.model}, got {request.n}", param="n", code="invalid_value")
            prompts = await self._prompts(request)
            prompt_tokens = sum([await self.hooks.count(p) for p in prompts])
            await _Run(self, exchange, request, prompts, prompt_tokens).answer()
        except RequestError as exc:
            if not exchange.answered_stream:
                await exchange.respond_error(exc)
        finally:
            exchange.release()

    async def _prompts(self, request: ChatCompletionRequest | CompletionRequest) -> list[str | list[int]]:
        if isinstance(request, ChatCompletionRequest):
            messages = [Message(m.role, m.text, m.name) for m in request.messages]
            try:
                return [await self.hooks.render(messages)]
            except RequestError:
                raise
            except Exception as exc:
                logger.exception("the chat template raised")
                raise ModelError(f"the chat template raised {type(exc).__name__}: {exc}") from exc
        return request.prompts


class _Run:
    """One request's generations, from submission to the last byte."""

    def __init__(self, endpoint: GenerateEndpoint, exchange: Exchange, request: Any, prompts: list[str | list[int]], prompt_tokens: int) -> None:
        self.endpoint = endpoint
        self.exchange = exchange
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.answer_shape = Answer.new(endpoint.chat, request.model)
        self.events: asyncio.Queue[Delta] = asyncio.Queue()
        self.generations: list[Generation] = []
        n = request.n
        for p, prompt in enumerate(prompts):
            for i in range(n):
                seed = None if request.seed is None else request.seed + i  # n choices from one seed still differ
                sequence = Sequence(
                    prompt, temperature=request.temperature, top_p=request.top_p, seed=seed, max_tokens=request.token_limit, index=p * n + i
                )
                self.generations.append(endpoint.scheduler.submit(sequence, request.stop_sequences, self.events))

    async def answer(self) -> None:
        loop = asyncio.get_running_loop()
        work = loop.create_task(self._stream() if self.request.stream else self._whole())
        gone = loop.create_task(wait_for_disconnect(self.exchange.receive))
        try:
            await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # the client left: its sequences leave the batch at the next step
                work.cancel()
                self.exchange.metrics.cancelled.inc()
                await asyncio.wait((work,))
                return
        finally:
            gone.cancel()
            if not work.done():
                work.cancel()
            for generation in self.generations:
                if not generation.finished:
                    self.endpoint.scheduler.cancel(generation)
        work.result()

    @property
    def completion_tokens(self) -> int:
        return sum(g.completion_tokens for g in self.generations)

    async def _next(self) -> Delta:
        delta = await self.events.get()
        if delta.error is not None:
            raise delta.error
        return delta

    async def _next_in_time(self) -> Delta:
        return await within(self.endpoint.config.timeout, self.request.model, self._next())

    async def _whole(self) -> None:
        # --timeout bounds a whole answer, and in a stream the wait for each delta, as for a
        # streaming API's items: a long generation is what streaming is for
        await within(self.endpoint.config.timeout, self.request.model, self._collect())

    async def _collect(self) -> None:
        texts = [""] * len(self.generations)
        reasons = [""] * len(self.generations)
        open_choices = len(self.generations)
        while open_choices:
            delta = await self._next()
            texts[delta.index] += delta.text
            if delta.finish_reason is not None:
                reasons[delta.index] = delta.finish_reason
                open_choices -= 1
        await self.exchange.respond_json(self.answer_shape.whole(texts, reasons, self.prompt_tokens, self.completion_tokens))

    async def _stream(self) -> None:
        shape, exchange = self.answer_shape, self.exchange
        delta = await self._next_in_time()  # the first delta decides the status
        await exchange.send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, (b"x-request-id", exchange.request_id)]})
        exchange.answered_stream = True
        started_roles: set[int] = set()
        open_choices = len(self.generations)
        try:
            while True:
                first = shape.chat and delta.index not in started_roles
                started_roles.add(delta.index)
                if delta.text or first:
                    await self._send(shape.chunk(delta.index, delta.text, role=first))
                if delta.finish_reason is not None:
                    await self._send(shape.chunk(delta.index, None if shape.chat else "", delta.finish_reason))
                    open_choices -= 1
                    if not open_choices:
                        break
                delta = await self._next_in_time()
            if self.request.include_usage:
                await self._send(shape.usage_chunk(self.prompt_tokens, self.completion_tokens))
            tail = _DONE
        except RequestError as exc:  # after the first chunk: the error goes into the stream, as OpenAI does
            tail = b"data: " + error_json(from_request_error(exc)) + b"\n\n"
        await exchange.send({"type": "http.response.body", "body": tail, "more_body": False})
        exchange.metrics.observe_request(200, time.perf_counter() - exchange.started)

    async def _send(self, chunk: dict[str, Any]) -> None:
        await self.exchange.send({"type": "http.response.body", "body": b"data: " + orjson.dumps(chunk) + b"\n\n", "more_body": True})


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
