"""Serving: the ASGI app factory, the micro-batcher, metrics, and the uvicorn server."""

from __future__ import annotations

from ..service_base import build_openapi
from ._app import ServiceApp, create_app
from ._buffered import BufferedStreamEndpoint, buffered_endpoints
from ._composition import start_in_background
from ._config import ServeConfig, parse_size
from ._server import serve
from ._state import ServerState

__all__ = [
    "BufferedStreamEndpoint",
    "ServeConfig",
    "ServerState",
    "ServiceApp",
    "buffered_endpoints",
    "build_openapi",
    "create_app",
    "parse_size",
    "serve",
    "start_in_background",
]
