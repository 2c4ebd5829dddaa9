"""Micro-batching for ``@openai.embeddings``: concurrent requests are merged into one call.

The batcher's policy (``runtime/_batcher.py``): never wait on purpose. While a call
runs, requests queue; when it returns, the queued texts that ask for the same
``dimensions`` (up to ``max_batch_size`` of them) make the next call. A request with
more texts than that is cut into several calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ...errors import ModelError, RequestError

logger = logging.getLogger("modelbundle.generation")


class _Item:
    __slots__ = ("dimensions", "future", "texts")

    def __init__(self, texts: list[str], dimensions: int | None, future: asyncio.Future[list[list[float]]]) -> None:
        self.texts = texts
        self.dimensions = dimensions
        self.future = future


class EmbeddingBatcher:
    """Queues embedding requests of one model and runs them in merged calls, one call at a time."""

    def __init__(self, embed: Callable[..., Any], *, is_async: bool, max_batch_size: int, run_in_thread: Callable[..., Any]) -> None:
        self._embed = embed
        self._is_async = is_async
        self.max_batch_size = max_batch_size
        self._run_in_thread = run_in_thread
        self._queue: deque[_Item] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def embed(self, texts: list[str], dimensions: int | None) -> list[list[float]]:
        """One vector (a list of floats) per text."""
        loop = asyncio.get_running_loop()
        size = self.max_batch_size
        futures = []
        for start in range(0, len(texts), size):
            future: asyncio.Future[list[list[float]]] = loop.create_future()
            self._queue.append(_Item(texts[start : start + size], dimensions, future))
            futures.append(future)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        parts = await asyncio.gather(*futures)
        return [vector for part in parts for vector in part]

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

    async def _run(self) -> None:
        while self._queue:
            batch = self._take()
            texts = [text for item in batch for text in item.texts]
            try:
                vectors = await self._call(texts, batch[0].dimensions)
            except Exception as exc:
                error = exc if isinstance(exc, RequestError) else ModelError(f"the embeddings model raised {type(exc).__name__}: {exc}")
                if not isinstance(exc, RequestError):
                    logger.error("the embeddings call raised", exc_info=exc)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            start = 0
            for item in batch:
                if not item.future.done():  # a request whose client left is cancelled
                    item.future.set_result(vectors[start : start + len(item.texts)])
                start += len(item.texts)

    def _take(self) -> list[_Item]:
        first = self._queue.popleft()
        batch, rows = [first], len(first.texts)
        for item in list(self._queue):
            if item.dimensions == first.dimensions and rows + len(item.texts) <= self.max_batch_size and not item.future.done():
                self._queue.remove(item)
                batch.append(item)
                rows += len(item.texts)
        return [item for item in batch if not item.future.done()] or [first]

    async def _call(self, texts: list[str], dimensions: int | None) -> list[list[float]]:
        if self._is_async:
            result = await self._embed(texts, dimensions)
        else:
            result = await self._run_in_thread(self._embed, texts, dimensions)
        rows = result.tolist() if hasattr(result, "tolist") else result  # numpy arrays, or lists of floats
        if not isinstance(rows, list) or len(rows) != len(texts) or not all(isinstance(row, list) for row in rows):
            raise TypeError(f"it answered {type(result).__name__} for {len(texts)} texts; it returns one row of floats per text")
        return [[float(x) for x in row] for row in rows]
