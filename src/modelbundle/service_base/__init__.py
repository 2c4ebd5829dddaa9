"""The declaration layer: ``Service``, ``@api``, and loading a service from a target string."""

from __future__ import annotations

from ._api import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS, APIOptions, api
from ._artifact import Artifact, PackedService, bind_artifacts, declared_artifacts
from ._depends import Dependency, bind_dependencies, declared_dependencies, depends
from ._graph import Graph, ServiceNode, service_graph
from ._importer import is_file_target, load_service, services_defined_in, split_target, target_root
from ._inspect import RESERVED_PREFIXES, RESERVED_ROUTES, inspect_apis
from ._method import APIMethod, Param
from ._openapi import build_openapi
from ._service import Service

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_LATENCY_MS",
    "RESERVED_PREFIXES",
    "RESERVED_ROUTES",
    "APIMethod",
    "APIOptions",
    "Artifact",
    "Dependency",
    "Graph",
    "PackedService",
    "Param",
    "Service",
    "ServiceNode",
    "api",
    "bind_artifacts",
    "bind_dependencies",
    "build_openapi",
    "declared_artifacts",
    "declared_dependencies",
    "depends",
    "inspect_apis",
    "is_file_target",
    "load_service",
    "service_graph",
    "services_defined_in",
    "split_target",
    "target_root",
]
