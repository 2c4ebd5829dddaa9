"""Composition: services that call services (``depends``), in one process or over HTTP.

``Transport`` is the seam: a handle checks each call against the dependency's
APIs and hands it to a transport, which runs it in this process or elsewhere.
"""

from __future__ import annotations

from ._background import start_in_background
from ._handle import DependencyMethod, ServiceHandle
from ._in_process import InProcess, dependency_error
from ._local import ARTIFACT_SEPARATOR, LocalDependencies, split_artifacts
from ._transport import Transport

__all__ = [
    "ARTIFACT_SEPARATOR",
    "DependencyMethod",
    "InProcess",
    "LocalDependencies",
    "ServiceHandle",
    "Transport",
    "dependency_error",
    "split_artifacts",
    "start_in_background",
]
