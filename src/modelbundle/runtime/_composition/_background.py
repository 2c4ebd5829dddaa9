"""A composed service used from Python (``modelbundle.load``): its dependencies on a loop of their own.

There is no server, so the dependencies' invokers and batchers run on an event
loop in a daemon thread; a sync call from the user's thread waits on it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from ...service_base import Service, bind_artifacts, service_graph
from .._config import ServeConfig
from .._metrics import Metrics
from ._local import LocalDependencies, split_artifacts


def start_in_background(service_cls: type[Service], instance: Service, loaded: dict[str, Any]) -> LocalDependencies:
    """Set up ``instance``'s dependencies (dependencies first) and connect it; its own setup() is the caller's."""
    graph = service_graph(service_cls)
    per_service = split_artifacts(graph, loaded)
    bind_artifacts(instance, per_service[graph.entry.name])
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name=f"modelbundle-{graph.entry.name}-dependencies", daemon=True).start()
    dependencies = LocalDependencies(graph, ServeConfig(), Metrics())

    async def start() -> None:
        await dependencies.start(per_service, _call_hook)
        dependencies.connect(instance, graph.entry)

    asyncio.run_coroutine_threadsafe(start(), loop).result()
    return dependencies


async def _call_hook(hook: Any) -> None:
    if inspect.iscoroutinefunction(hook):
        await hook()
        return
    result = await asyncio.to_thread(hook)
    if inspect.isawaitable(result):
        await result
