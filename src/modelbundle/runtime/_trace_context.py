"""Where the current request's trace lives, for code that must not import the tracing modules.

The tracing middleware (``_tracing.py``) sets the first two when a request's span starts, in
the task that serves the request, and they stay set until that task ends (a job run sets them
for its own task): the access log reads ``trace_id`` when it writes the request's line, the
batcher reads ``request_span`` to link its model call to every request it served, and
``_spans.py`` opens child spans from it. ``tracer`` is set once, in the lifespan, whose tasks
start the job runs. With tracing off all three stay None, so reading one is the whole cost.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: the current request's trace id, 32 lower-case hex digits (as in ``traceparent``); None when not traced
trace_id: ContextVar[str | None] = ContextVar("modelbundle_trace_id", default=None)

#: the current request's (or job run's) span (``_span_record.SpanRecord``); None when not traced
request_span: ContextVar[Any] = ContextVar("modelbundle_request_span", default=None)

#: the process's tracer (``_tracing.Tracer``); None when tracing is off (set in the lifespan, for job runs)
tracer: ContextVar[Any] = ContextVar("modelbundle_tracer", default=None)
