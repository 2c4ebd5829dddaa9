"""Serving one service of a composed graph on its own (``--service NAME``, each ``--split`` process).

Its dependencies are served elsewhere: each is reached over HTTP at the URL in
``MODELBUNDLE_DEPENDENCY_<NAME>_URL`` (``_urls.py``) through a ``RemoteTransport``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...bundler import dev_artifact_loader, module_file
from ...errors import ServeError
from ...service_base import Service, service_graph
from .._source import ServiceSource
from ._local import split_artifacts
from ._remote import RemoteTransport
from ._urls import dependency_urls


def one_service_source(source: ServiceSource, name: str) -> ServiceSource:
    """``source`` narrowed to the service called ``name`` of its graph; an unknown name fails in one line."""
    graph = service_graph(source.service_cls)
    try:
        node = graph[name]
    except KeyError:
        raise ServeError(
            f"--service {name!r}: the graph of {source.service_cls.name!r} has no service of that name; "
            f"it has {', '.join(graph.names())}"
        ) from None
    if source.service_artifacts is not None:
        # a bundle: only this service's artifacts load, so only its referenced weights are fetched
        own = source.service_artifacts(name)
        if node.cls is source.service_cls:
            return dataclasses.replace(source, load_artifacts=own)

        def loader() -> dict[str, Any]:
            return split_artifacts(graph, own())[name]  # stored as <service>.<name>, loaded by plain name
    elif node.cls is source.service_cls:
        return source
    else:  # code: a dependency's artifacts load from beside its own module
        loader = dev_artifact_loader(node.cls, module_file(node.cls))
    return ServiceSource(node.cls, loader, f"{source.origin}, service {name}", source.pinned_target, source.manifest)


def dependency_names(service_cls: type[Service]) -> list[str]:
    """The services ``service_cls`` calls directly, each once."""
    return sorted(set(service_graph(service_cls).entry.dependencies.values()))


def remote_dependencies(service_cls: type[Service], timeout: float, env: Mapping[str, str]) -> dict[str, RemoteTransport]:
    """A transport per dependency attribute of ``service_cls``, to the URLs the environment gives
    (one transport, hence one connection pool, per dependency service)."""
    graph = service_graph(service_cls)
    urls = dependency_urls(dependency_names(service_cls), env)
    transports = {name: RemoteTransport(name, graph[name].cls.__apis__, url, timeout) for name, url in urls.items()}
    return {attribute: transports[name] for attribute, name in graph.entry.dependencies.items()}
