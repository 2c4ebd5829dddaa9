"""Every dependency of an entry service, set up and served in this process.

Each dependency gets its own instance, artifacts, ``Invokers`` (so its own
micro-batchers and threads) and metrics, labelled ``<service>.<api>`` so that two
services' ``predict`` stay apart in ``/metrics``. ``setup()`` runs once per
service, dependencies first; ``teardown()`` in the reverse order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...service_base import Graph, Service, ServiceNode, bind_artifacts, bind_dependencies
from .._config import ServeConfig
from .._invoke import Invokers
from .._metrics import Metrics
from ._handle import ServiceHandle
from ._in_process import InProcess

logger = logging.getLogger("modelbundle.server")

#: separates a dependency's service name from its artifact's name in a bundle (``Model.weights``)
ARTIFACT_SEPARATOR = "."

Hook = Callable[[Any], Awaitable[None]]


def split_artifacts(graph: Graph, loaded: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One loaded-artifacts dict per service: the entry's by plain name, a dependency's as ``<service>.<name>``."""
    per_service: dict[str, dict[str, Any]] = {node.name: {} for node in graph.services}
    for key, value in loaded.items():
        service, separator, name = key.rpartition(ARTIFACT_SEPARATOR)
        if separator and service in per_service and service != graph.entry.name:
            per_service[service][name] = value
        else:
            per_service[graph.entry.name][key] = value
    return per_service


class LocalDependencies:
    """The dependencies of one entry, live in this process once ``start`` returns."""

    def __init__(self, graph: Graph, config: ServeConfig, metrics: Metrics) -> None:
        self._graph = graph
        self._config = config
        self._metrics = metrics
        self._transports: dict[str, InProcess] = {}
        #: set-up services, in set-up order, with their invokers
        self._running: list[tuple[ServiceNode, Service, Invokers]] = []

    async def start(self, artifacts: Mapping[str, dict[str, Any]], call_hook: Hook) -> None:
        """Set up every dependency, dependencies first (the entry is the caller's to set up)."""
        for node in self._graph.services[:-1]:
            instance = node.cls()
            bind_artifacts(instance, artifacts.get(node.name, {}))
            self.connect(instance, node)
            await call_hook(instance.setup)
            invokers = Invokers(instance, self._config, self._metrics, metric_prefix=node.name + ".")
            self._running.append((node, instance, invokers))
            apis = [api for api in node.cls.__apis__.values() if not api.websocket]
            invokes = {api.name: invokers.build(api) for api in apis}
            api_metrics = {api.name: self._metrics.for_api(f"{node.name}.{api.name}") for api in apis}
            self._transports[node.name] = InProcess(node.name, invokes, api_metrics)
            logger.info("dependency %s is ready", node.name)

    def connect(self, instance: Service, node: ServiceNode) -> None:
        """Give a live instance a handle per dependency attribute (its dependencies are already started)."""
        loop = asyncio.get_running_loop()
        handles = {
            attribute: ServiceHandle(f"{node.cls.__name__}.{attribute}", self._graph[name].cls, self._transports[name], loop)
            for attribute, name in node.dependencies.items()
        }
        bind_dependencies(instance, handles)

    async def stop(self, call_hook: Hook, graceful_timeout: float) -> None:
        """Tear down in the reverse order of set-up; a service's callers stop before it does."""
        while self._running:
            node, instance, invokers = self._running.pop()
            try:
                await asyncio.wait_for(invokers.close(), graceful_timeout + 1)
            except TimeoutError:
                logger.error("a batch of dependency %s was still running at shutdown; leaving it", node.name)
            try:
                await call_hook(instance.teardown)
            except Exception:
                logger.exception("%s.teardown() raised", node.cls.__name__)
