"""Whether the standard ``OTEL_*`` environment variables ask for tracing, read without OpenTelemetry.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp`` or ``console``), or,
with that variable unset, when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` turns it off whatever the
rest says. Off, nothing of OpenTelemetry is imported. The exporter (``_span_export.py``) reads
the other ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, timeout in seconds as the
Python SDK reads it, compression, certificates) and ``OTEL_BSP_*`` for its queue; the sampler
``OTEL_TRACES_SAMPLER`` and ``_ARG``; the resource ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ServeError

if TYPE_CHECKING:
    from ._app import ServiceApp
    from ._tracing import Tracing

#: the exporters this runtime can build (OTLP over HTTP/protobuf, and stdout for a quick look)
EXPORTERS = ("otlp", "console")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def requested_exporter(environ: Mapping[str, str]) -> str | None:
    """The exporter the environment asks for, or None (tracing off); a one-line error for what we cannot do."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        exporter = "otlp" if any(environ.get(name, "").strip() for name in _ENDPOINTS) else None
    elif named == "none":
        return None
    else:
        exporters = [part.strip() for part in named.split(",") if part.strip()]
        unknown = [part for part in exporters if part not in EXPORTERS]
        if unknown or len(exporters) != 1:
            raise ServeError(
                f"OTEL_TRACES_EXPORTER={named!r}: modelbundle exports traces with one of {', '.join(EXPORTERS)} (or none)"
            )
        exporter = exporters[0]
    if exporter == "otlp":
        for name in _PROTOCOLS:
            protocol = environ.get(name, "").strip().lower()
            if protocol and protocol != "http/protobuf":
                raise ServeError(f"{name}={protocol!r}: modelbundle exports OTLP over http/protobuf only; set it to http/protobuf")
            if protocol:
                break
    return exporter


def check_tracing(environ: Mapping[str, str]) -> None:
    """Fail early, before anything is served, on OTEL_* settings a worker could not honour."""
    exporter = requested_exporter(environ)
    if exporter is not None:
        from ._sampler import sampler_from
        from ._span_export import OtlpHttpSender, SpanSettings

        sampler_from(environ)
        SpanSettings(environ)
        if exporter == "otlp":
            OtlpHttpSender(environ)
    # the runtime encodes and sends spans itself; the SDK gives it the standard resource attributes
    needed = "opentelemetry.sdk" if exporter is not None else None
    if needed is not None and not _installed(needed):
        raise ServeError(_NOT_INSTALLED.format(detail=f"no {needed}"))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


_NOT_INSTALLED = "the OTEL_* environment variables turn tracing on, but OpenTelemetry is not installed ({detail}): pip install 'modelbundle[otel]'"


def start_tracing(service_name: str, environ: Mapping[str, str]) -> Tracing | None:
    """The tracing of one server process, or None when the environment does not ask for it."""
    exporter = requested_exporter(environ)
    if exporter is None:
        return None
    try:
        from ._tracing import Tracing
    except ImportError as exc:
        raise ServeError(_NOT_INSTALLED.format(detail=exc)) from None
    return Tracing(service_name, exporter, environ)


def traced_routes(app: ServiceApp) -> dict[str, str]:
    """Path -> API name of every POST that goes straight to an API (the spans' ``modelbundle.api``)."""
    routes: dict[str, str] = {}
    for api in app.service_cls.__apis__.values():
        routes[api.route] = api.name
        if api.name in app.oip.models:
            routes.update(dict.fromkeys(app.oip.infer_paths(api.name), api.name))
    if app.openai is not None:
        declarations = app.service_cls.__openai__
        assert declarations is not None
        for path in app.openai.post_paths:
            name = declarations.embed if path.endswith("/embeddings") else declarations.step
            routes[path] = name or path
    return routes
