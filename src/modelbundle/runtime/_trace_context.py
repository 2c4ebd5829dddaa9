"""Where the current request's trace lives, for code that must not import OpenTelemetry.

Both variables are set by the tracing middleware (``_tracing.py``) when a request's span
starts, in the task that serves the request, and stay set until that task ends: the access
log reads ``trace_id`` when it writes the request's line, the batcher reads ``request_span``
to link its model call to every request it served. With tracing off both stay None, so
reading them is the whole cost.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: the current request's trace id, 32 lower-case hex digits (as in ``traceparent``); None when not traced
trace_id: ContextVar[str | None] = ContextVar("modelbundle_trace_id", default=None)

#: the current request's (or job run's) OpenTelemetry span; None when not traced
request_span: ContextVar[Any] = ContextVar("modelbundle_request_span", default=None)
