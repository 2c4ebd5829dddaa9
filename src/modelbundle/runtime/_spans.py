"""The hot path's hooks into tracing: each costs one context variable read when tracing is off.

They never import ``_tracing`` themselves until a tracer is set (``_trace_context``): then tracing
is on and ``_tracing`` is already imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from . import _trace_context

_OFF = contextlib.nullcontext()


def child_span(name: str) -> contextlib.AbstractContextManager[Any]:
    """A span under the current request's (``decode``, ``encode``), or nothing when not traced."""
    span = _trace_context.request_span.get()
    if span is None or not span.is_recording():  # untraced, or sampled out
        return _OFF
    from ._tracing import child_span as traced_child

    return traced_child(_trace_context.tracer.get(), name, span)


def model_call_span(api: str, served: Sequence[Any], rows: int) -> contextlib.AbstractContextManager[Any]:
    """The span of a batcher's model call, linked to the spans of the requests it serves (nothing when untraced)."""
    spans = [span for span in served if span is not None and span.is_recording()]
    tracer = _trace_context.tracer.get()
    if not spans or tracer is None:
        return _OFF
    from ._tracing import model_call_span as traced_call

    return traced_call(tracer, api, spans, rows, len(served))


def current_traceparent() -> str | None:
    """The current request's span as a W3C ``traceparent``, to hand on (a job keeps it); None when untraced."""
    span = _trace_context.request_span.get()
    return None if span is None else span.traceparent


def job_run_span(api: str, job_id: str, attempt: int, traceparent: str | None) -> contextlib.AbstractContextManager[Any]:
    """A job run's span (``_tracing.job_run_span``), or nothing when tracing is off."""
    tracer = _trace_context.tracer.get()
    if tracer is None:
        return _OFF
    from ._tracing import job_run_span as traced_run

    return traced_run(tracer, api, job_id, attempt, traceparent)
