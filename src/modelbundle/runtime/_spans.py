"""The hot path's hooks into tracing: each costs one context variable read when tracing is off.

Spans are ``_span_record.SpanRecord``s (a child or a model call's span is made from the
request's span, which knows where ended spans go); only a job run's span needs the tracer
(``_trace_context``), for the sampler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from . import _trace_context
from ._span_record import INTERNAL, SpanRecord, new_trace_id

_OFF = contextlib.nullcontext()


def child_span(name: str) -> contextlib.AbstractContextManager[Any]:
    """A span under the current request's (``decode``, ``encode``), or nothing when not traced."""
    span: SpanRecord | None = _trace_context.request_span.get()
    if span is None or not span.sampled:  # untraced, or sampled out
        return _OFF
    return span.child(name)  # a ``SpanRecord``: ended on leaving the ``with``


def model_call_span(api: str, served: Sequence[Any], rows: int) -> contextlib.AbstractContextManager[Any]:
    """The span of a batcher's model call, linked to the spans of the requests it serves (nothing when untraced).

    A new root, not a child of one of them: a batch belongs to all its requests alike. Recorded
    whenever one of them is, whatever the sampler says of its own new trace id.
    """
    spans = tuple([span for span in served if span is not None and span.sampled])
    if not spans:
        return _OFF
    attributes = {"modelbundle.api": api, "modelbundle.batch.size": rows, "modelbundle.batch.requests": len(served)}
    return SpanRecord(spans[0].sink, f"{api} batch", INTERNAL, new_trace_id(), 0, True, attributes, spans)


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
