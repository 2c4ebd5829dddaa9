"""Connecting a service served alone (``--service``, a ``--split`` process) to its remote dependencies."""

from __future__ import annotations

import asyncio
import os

from ...service_base import Service, bind_dependencies, service_graph
from ._one_service import remote_dependencies
from ._remote import RemoteTransport


class RemoteDependencies:
    """The transports of one live service's dependencies: bound before setup(), asked at /readyz, closed at shutdown."""

    def __init__(self, transports: dict[str, RemoteTransport]) -> None:
        self._by_attribute = transports
        self._transports = list({id(t): t for t in transports.values()}.values())

    @classmethod
    def connect(cls, service: Service, timeout: float) -> RemoteDependencies:
        from ._handle import ServiceHandle  # helper A's handle: a dependency's APIs as methods

        service_cls = type(service)
        transports = remote_dependencies(service_cls, timeout, os.environ)
        graph = service_graph(service_cls)
        loop = asyncio.get_running_loop()
        handles = {
            attribute: ServiceHandle(f"{service_cls.__name__}.{attribute}", graph[t.dependency].cls, t, loop)
            for attribute, t in transports.items()
        }
        bind_dependencies(service, handles)
        return cls(transports)

    async def not_ready(self) -> list[str]:
        """The dependencies whose /readyz is not 200 (a composed service is ready only with all of them)."""
        answers = await asyncio.gather(*(t.ready() for t in self._transports))
        return [t.dependency for t, ok in zip(self._transports, answers, strict=True) if not ok]

    async def close(self) -> None:
        await asyncio.gather(*(t.aclose() for t in self._transports))
