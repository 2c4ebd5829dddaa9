"""Calling a served bundle from Python: ``modelbundle.Client`` and ``AsyncClient`` (docs/client.md).

They need httpx, the ``client`` extra (``pip install 'modelbundle[client]'``); the wire codec
(``_wire``) does not, so services that call other services can use it with any HTTP library.
"""

from __future__ import annotations

from ._client import AsyncClient, AsyncJob, Client, Job
from ._retry import RetryPolicy
from ._stub import render_stub
from ._wire import build_error, decode_response, encode_request, error_from_response

__all__ = [
    "AsyncClient",
    "AsyncJob",
    "Client",
    "Job",
    "RetryPolicy",
    "build_error",
    "decode_response",
    "encode_request",
    "error_from_response",
    "render_stub",
]
