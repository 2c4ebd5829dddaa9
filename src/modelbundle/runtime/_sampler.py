"""Head sampling as the standard ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` ask for it.

The decision is made once, when a trace's first span here starts; its children and the model
calls linked to it follow it. ``traceidratio`` samples a trace when the low 64 bits of its id
fall under the ratio, as OpenTelemetry's SDKs do, so every service of a trace agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import ServeError

#: (sampled flag of the caller's span, or None for a new trace; the trace id) -> sample it?
Sampler = Callable[[bool | None, int], bool]

SAMPLERS = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)
_LOW_64 = (1 << 64) - 1


def sampler_from(environ: Mapping[str, str]) -> Sampler:
    """The sampler the environment names (``parentbased_always_on`` by default); a one-line error otherwise."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        raise ServeError(f"OTEL_TRACES_SAMPLER={name!r}: modelbundle samples with one of {', '.join(SAMPLERS)}")
    root: Callable[[int], bool]
    if name.endswith("always_on"):
        root = _always
    elif name.endswith("always_off"):
        root = _never
    else:
        root = _ratio(_ratio_arg(environ.get("OTEL_TRACES_SAMPLER_ARG", "")))
    if not name.startswith("parentbased_"):
        return lambda parent_sampled, trace_id: root(trace_id)
    return lambda parent_sampled, trace_id: root(trace_id) if parent_sampled is None else parent_sampled


def _always(trace_id: int) -> bool:
    return True


def _never(trace_id: int) -> bool:
    return False


def _ratio_arg(text: str) -> float:
    if not text.strip():
        return 1.0  # the specification's default
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ServeError(f"OTEL_TRACES_SAMPLER_ARG={text!r}: a trace id ratio is a number from 0 to 1")
    return ratio


def _ratio(ratio: float) -> Callable[[int], bool]:
    bound = round(ratio * (_LOW_64 + 1))
    return lambda trace_id: (trace_id & _LOW_64) < bound
