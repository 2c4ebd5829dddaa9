"""Where ``bundle serve`` hands a composed graph over: ``--split`` and ``--service NAME``."""

from __future__ import annotations

import os
import socket

from ...errors import ServeError
from ...service_base import service_graph
from .._config import ServeConfig
from .._source import ServiceSource
from ._one_service import dependency_names, one_service_source
from ._urls import dependency_urls


def narrowed_source(source: ServiceSource, config: ServeConfig) -> ServiceSource:
    """With ``--service NAME``: that service of the graph, its dependencies' URLs checked now (one line when missing)."""
    if config.service is None:
        return source
    chosen = one_service_source(source, config.service)
    dependency_urls(dependency_names(chosen.service_cls), os.environ)
    return chosen


def serve_split(source: ServiceSource, config: ServeConfig, sock: socket.socket) -> None:
    """Run each service of the graph in its own process (``_split.py``) until stopped."""
    from ._split import SplitSupervisor

    if config.workers > 1:
        raise ServeError("--split runs one process per service; it cannot be combined with --workers > 1")
    names = service_graph(source.service_cls).names()
    SplitSupervisor(source.pinned_target, names, config, sock).run()
