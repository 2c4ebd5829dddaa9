"""Adaptive micro-batching for one batchable API.

Policy: never wait on purpose. When the model is idle a request runs at once;
while a batch runs, new requests queue, and the moment it finishes the queue
(up to ``max_batch_size`` rows) becomes the next batch. So batches grow with
load and stay at one request when there is none. Admission control keeps the
queue bounded: a request whose estimated completion is past ``max_latency_ms``
is refused with ``Overloaded`` (503) instead of waiting without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..errors import InvalidInput, Overloaded, PayloadTooLarge
from ..service_base import APIMethod
from . import _trace_context
from ._latency import LatencyModel
from ._log_context import note_batch_size
from ._metrics import APIMetrics
from ._spans import model_call_span

logger = logging.getLogger("modelbundle.batcher")

#: hard cap on queued rows, in batches, whatever the latency estimate says (bounds memory)
MAX_QUEUED_BATCHES = 32

CallBatch = Callable[[dict[str, Any]], Awaitable[Any]]


class _Item:
    __slots__ = ("batch_rows", "deadline", "future", "inputs", "queued", "rows", "span")

    def __init__(self, inputs: dict[str, Any], rows: int, future: asyncio.Future[Any], deadline: float) -> None:
        self.inputs = inputs
        self.rows = rows
        self.future = future
        self.deadline = deadline
        #: still in the queue (not yet taken into a batch)
        self.queued = True
        #: rows of the model call that answered it (for the access log)
        self.batch_rows = 0
        #: the request's trace span, which the model call's span links to (None when not traced)
        self.span = _trace_context.request_span.get()


class Batcher:
    """Queues requests of one API and runs them in merged batches, one batch at a time."""

    def __init__(self, api: APIMethod, call_batch: CallBatch, metrics: APIMetrics) -> None:
        self.api = api
        self._call_batch = call_batch
        self._metrics = metrics
        self._max_rows = api.max_batch_size
        self._max_latency = api.max_latency_ms / 1000.0
        self._max_queued_rows = api.max_batch_size * MAX_QUEUED_BATCHES
        self._latency = LatencyModel()
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._running_rows = 0
        self._running_since = 0.0
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- the request side ----------------------------------------------------------
    async def submit(self, inputs: dict[str, Any]) -> Any:
        """Queue one request's inputs and wait for its own slice of the batch output."""
        if self._closing:
            raise Overloaded("the server is shutting down", headers={"Retry-After": "1"})
        rows = self._rows(inputs)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._admit(rows, now)
        future: asyncio.Future[Any] = loop.create_future()
        item = _Item(inputs, rows, future, now + self._max_latency)
        self._queue.append(item)
        self._queued_rows += rows
        self._metrics.queue_depth.inc()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run_forever())
            self._task.add_done_callback(self._on_dispatcher_exit)
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        try:
            result = await future
        except asyncio.CancelledError:  # the client went away, or --timeout: its rows are never computed
            self._withdraw(item)
            raise
        note_batch_size(item.batch_rows)
        return result

    def _withdraw(self, item: _Item) -> None:
        """Take a cancelled request out of the queue now, so its rows stop counting for admission."""
        if not item.queued:  # already in a batch: its answer is dropped when the batch ends
            return
        self._queue.remove(item)  # rare (a cancellation), and the queue is bounded
        self._dequeued(item)

    def _dequeued(self, item: _Item) -> None:
        item.queued = False
        self._queued_rows -= item.rows
        self._metrics.queue_depth.dec()

    def _on_dispatcher_exit(self, task: asyncio.Task[None]) -> None:
        """The dispatcher only ends on close(); if a bug ends it, fail the waiters instead of hanging them."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("the batcher of %s stopped", self.api.name, exc_info=task.exception())
        while self._queue:
            item = self._queue.popleft()
            self._dequeued(item)
            if not item.future.done():
                item.future.set_exception(RuntimeError("the batcher stopped unexpectedly"))

    def _rows(self, inputs: dict[str, Any]) -> int:
        counts = {p.name: p.adapter.rows(inputs[p.name], self.api.batch_dim) for p in self.api.params if p.name in inputs}
        values = set(counts.values())
        if len(values) > 1:
            raise InvalidInput(f"inputs must have the same number of rows along dimension {self.api.batch_dim}, got {counts}")
        return values.pop() if values else 1

    def _admit(self, rows: int, now: float) -> None:
        if rows > self._max_queued_rows:  # could never be queued: no use retrying
            raise PayloadTooLarge(
                f"{rows} rows in one request; {self.api.name} takes at most {self._max_queued_rows} per request"
            )
        if self._queued_rows + rows > self._max_queued_rows:
            raise self._overloaded(f"the queue of {self.api.name} is full ({self._queued_rows} rows waiting)")
        # an idle model always takes the request: waiting cannot make it faster, and
        # refusing would also stop the latency estimate from ever learning again
        if not self._latency.trained or (not self._running_rows and not self._queue):
            return
        estimate = self._estimate_completion(rows, now)
        if estimate > self._max_latency:
            raise self._overloaded(
                f"{self.api.name} cannot answer within max_latency_ms={self.api.max_latency_ms:g} "
                f"(about {estimate * 1000:.0f} ms now)"
            )

    def _estimate_completion(self, rows: int, now: float) -> float:
        """Seconds until a request of ``rows`` queued now would be answered."""
        predict = self._latency.predict
        current = 0.0
        if self._running_rows:
            current = max(predict(self._running_rows) - (now - self._running_since), 0.0)
        full_batches, partial = divmod(self._queued_rows, self._max_rows)
        return current + full_batches * predict(self._max_rows) + predict(min(partial + rows, self._max_rows))

    def _overloaded(self, message: str) -> Overloaded:
        retry_after = max(1, round(self._estimate_completion(0, time.monotonic()) or 1))
        return Overloaded(message, headers={"Retry-After": str(retry_after)})

    # -- the dispatch side ------------------------------------------------------------
    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            items = self._take_batch(loop.time())
            if items:
                await self._run_batch(items, loop)

    def _take_batch(self, now: float) -> list[_Item]:
        items: list[_Item] = []
        rows = 0
        queue = self._queue
        while queue:
            item = queue[0]
            if items and rows + item.rows > self._max_rows:
                break
            queue.popleft()
            self._dequeued(item)
            if item.future.done():  # settled while queued (cancellations leave at once, through _withdraw)
                continue
            if now >= item.deadline:  # admitted on an estimate that proved too hopeful
                item.future.set_exception(self._overloaded(f"{self.api.name} could not start this request within max_latency_ms"))
                continue
            items.append(item)
            rows += item.rows
        return items

    async def _run_batch(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        rows = sum(item.rows for item in items)
        self._running_rows, self._running_since = rows, loop.time()
        started = time.perf_counter()
        try:
            outputs = await self._call_merged(items)
        except Exception as exc:
            if len(items) == 1:
                _fail(items[0], exc)
            else:  # find the bad input: run each request alone so only it fails
                logger.warning("a batch of %d requests to %s failed (%r); retrying them one by one", len(items), self.api.name, exc)
                for item in items:
                    await self._run_alone(item)
        else:
            self._latency.observe(rows, time.perf_counter() - started)
            self._metrics.batch_size.observe(rows)
            for item, output in zip(items, outputs, strict=True):
                item.batch_rows = rows
                if not item.future.done():
                    item.future.set_result(output)
        finally:
            self._running_rows = 0

    async def _run_alone(self, item: _Item) -> None:
        if item.future.done():
            return
        try:
            (output,) = await self._call_merged([item])
        except Exception as exc:
            _fail(item, exc)
        else:
            self._metrics.batch_size.observe(item.rows)
            item.batch_rows = item.rows
            if not item.future.done():
                item.future.set_result(output)

    async def _call_merged(self, items: Sequence[_Item]) -> list[Any]:
        dim = self.api.batch_dim
        if len(items) == 1:
            merged = items[0].inputs
        else:
            merged = {
                p.name: p.adapter.batch([item.inputs[p.name] for item in items], dim)
                for p in self.api.params
                if p.name in items[0].inputs
            }
        with model_call_span(self.api.name, [item.span for item in items], sum(item.rows for item in items)):
            output = await self._call_batch(merged)
        pieces = self.api.output.unbatch(output, [item.rows for item in items], dim)
        if len(pieces) != len(items):  # a custom adapter's bug must fail this batch, not the dispatcher
            raise ValueError(f"{type(self.api.output).__name__}.unbatch returned {len(pieces)} pieces for {len(items)} requests")
        return pieces

    # -- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        """Refuse new requests, run what is queued, and stop."""
        self._closing = True
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        if self._task is not None:
            await self._task


def _fail(item: _Item, exc: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
