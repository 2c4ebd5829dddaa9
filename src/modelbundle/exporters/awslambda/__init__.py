"""AWS Lambda: a bundle as a zip function (``bundle export lambda``), and the handler that serves it there.

``export_lambda`` writes the zip; inside it, ``modelbundle_handler.handler``
makes a ``LambdaHandler`` from the bundle at import and hands it every event.
"""

from __future__ import annotations

from ._entry import BUNDLE_DIR, HANDLER, HANDLER_MODULE
from ._events import HTTPRequest, HTTPResponse, event_format, format_response, parse_event
from ._export import DEFAULT_LIMITS, LambdaLimits, LambdaZip, export_lambda
from ._handler import LambdaHandler, lambda_config
from ._platform import LambdaRuntime, lambda_runtime

__all__ = [
    "BUNDLE_DIR",
    "DEFAULT_LIMITS",
    "HANDLER",
    "HANDLER_MODULE",
    "HTTPRequest",
    "HTTPResponse",
    "LambdaHandler",
    "LambdaLimits",
    "LambdaRuntime",
    "LambdaZip",
    "event_format",
    "export_lambda",
    "format_response",
    "lambda_config",
    "lambda_runtime",
    "parse_event",
]
