"""How each API is called: awaited, on a thread, or through its micro-batcher.

A streaming API's invoke answers with its items as an async iterator (``_stream_items.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..service_base import APIMethod, Service
from ._batcher import Batcher
from ._config import ServeConfig
from ._empty_batch import answering_empty_batches
from ._metrics import Metrics
from ._stream_items import as_async_items
from ._types import Invoke


class Invokers:
    """Builds one invoke callable per API for a live service instance, and stops them all."""

    def __init__(self, service: Service, config: ServeConfig, metrics: Metrics, *, metric_prefix: str = "") -> None:
        self._service = service
        #: a dependency's APIs are labelled ``<service>.<api>`` in the metrics it shares with its caller
        self._metric_prefix = metric_prefix
        self._config = config
        self._metrics = metrics
        # sync APIs run here, never on the event loop
        self._pool = ThreadPoolExecutor(config.threads, thread_name_prefix="modelbundle-api")
        self._batch_pools: list[ThreadPoolExecutor] = []
        self.batchers: dict[str, Batcher] = {}

    def build(self, api: APIMethod) -> Invoke:
        invoke = self._build(api)
        return answering_empty_batches(api, invoke) if api.batchable else invoke

    def _build(self, api: APIMethod) -> Invoke:
        method = getattr(self._service, api.name)
        if api.streaming:  # never batchable (service_base refuses it)
            return _stream_opener(method, api.is_async, self._pool)
        if api.batchable and self._config.batching:
            # one thread per batcher: batches of one API run one after another, off the loop
            pool = ThreadPoolExecutor(1, thread_name_prefix=f"modelbundle-batch-{api.name}")
            self._batch_pools.append(pool)
            metrics = self._metrics.for_api(self._metric_prefix + api.name)
            batcher = Batcher(api, _caller(method, api.is_async, pool), metrics)
            self.batchers[api.name] = batcher
            return batcher.submit
        return _caller(method, api.is_async, self._pool)

    async def close(self) -> None:
        """Run what the batchers hold, then stop the threads."""
        await asyncio.gather(*(batcher.close() for batcher in self.batchers.values()))
        for pool in (self._pool, *self._batch_pools):
            pool.shutdown(wait=False, cancel_futures=True)


def _caller(method: Callable[..., Any], is_async: bool, pool: ThreadPoolExecutor) -> Invoke:
    if is_async:

        async def call_async(kwargs: dict[str, Any]) -> Any:
            return await method(**kwargs)

        return call_async

    async def call_in_thread(kwargs: dict[str, Any]) -> Any:
        # run_in_executor does not carry context variables: the caller's go along so that
        # modelbundle.current_job() works in a sync API run as a job
        call = functools.partial(contextvars.copy_context().run, method, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    return call_in_thread


def _stream_opener(method: Callable[..., Any], is_async: bool, pool: ThreadPoolExecutor) -> Invoke:
    """Calls a streaming API and answers with its items as an async iterator."""
    if inspect.isasyncgenfunction(method) or inspect.isgeneratorfunction(method):
        # calling a generator function runs none of its body: nothing to keep off the loop
        async def open_generator(kwargs: dict[str, Any]) -> Any:
            return as_async_items(method(**kwargs), pool)

        return open_generator
    if is_async:  # an async def that returns an iterator

        async def open_async(kwargs: dict[str, Any]) -> Any:
            return as_async_items(await method(**kwargs), pool)

        return open_async

    async def open_in_thread(kwargs: dict[str, Any]) -> Any:
        # a plain function that returns an iterator may do its work before returning it
        result = await asyncio.get_running_loop().run_in_executor(pool, functools.partial(method, **kwargs))
        return as_async_items(result, pool)

    return open_in_thread
