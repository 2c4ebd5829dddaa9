"""Prometheus metrics: requests, latency, batch sizes, queue depth, in-flight and cancelled, per API;
active generations, step batch sizes, tokens and time to first token, per generative model.

With several workers the server sets ``PROMETHEUS_MULTIPROC_DIR`` before they
start; each worker then writes its values to files there and ``/metrics``
(answered by any one worker) sums them all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The metric families of one app; ``for_api`` hands out per-API children."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("modelbundle_requests", "Requests answered, by API and HTTP status.", ["api", "status"], registry=r)
        self.latency = Histogram(
            "modelbundle_request_duration_seconds",
            "Time from the request's arrival to its response, by API and HTTP status.",
            ["api", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "modelbundle_batch_size", "Rows per model call of a batchable API.", ["api"], buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "modelbundle_queue_depth", "Requests waiting for a batch.", ["api"], multiprocess_mode="livesum", registry=r
        )
        self.in_flight = Gauge(
            "modelbundle_in_flight_requests", "Requests being handled.", ["api"], multiprocess_mode="livesum", registry=r
        )
        self.cancelled = Counter(
            "modelbundle_cancelled_requests",
            "Requests (and streams) whose client went away before the answer was complete; their work was stopped.",
            ["api"],
            registry=r,
        )
        self.refused = Counter(
            "modelbundle_refused_requests",
            "Requests refused before any route ran: no or a wrong API key (unauthorized), over --rate-limit (rate_limited).",
            ["reason"],
            registry=r,
        )

        self.active_generations = Gauge(
            "modelbundle_active_generations", "Generations in progress, by model.", ["model"], multiprocess_mode="livesum", registry=r
        )
        self.step_batch_size = Histogram(
            "modelbundle_step_batch_size", "Sequences per step call of a generative model.", ["model"], buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.generated_tokens = Counter("modelbundle_generated_tokens", "Tokens generated, by model.", ["model"], registry=r)
        self.time_to_first_token = Histogram(
            "modelbundle_time_to_first_token_seconds",
            "Time from a generation's start to its first token, by model.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def for_api(self, api: str) -> APIMetrics:
        return APIMetrics(self, api)

    def render(self) -> bytes:
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class APIMetrics:
    """The children of one API, looked up once so the request path does no label lookups."""

    __slots__ = ("_batch_size", "_by_status", "_metrics", "api", "cancelled", "in_flight", "queue_depth")

    def __init__(self, metrics: Metrics, api: str) -> None:
        self._metrics = metrics
        self.api = api
        self.queue_depth = metrics.queue_depth.labels(api)
        self.in_flight = metrics.in_flight.labels(api)
        #: ``cancelled.inc()`` once per request or stream abandoned by its client
        self.cancelled = metrics.cancelled.labels(api)
        self._by_status: dict[int, tuple[Any, Any]] = {}
        self._batch_size: Any = None

    @property
    def batch_size(self) -> Any:
        """Created on first use, so only batchable APIs show a batch-size series."""
        if self._batch_size is None:
            self._batch_size = self._metrics.batch_size.labels(self.api)
        return self._batch_size

    def observe_request(self, status: int, seconds: float) -> None:
        children = self._by_status.get(status)
        if children is None:
            label = str(status)
            children = self._by_status[status] = (
                self._metrics.requests.labels(self.api, label),
                self._metrics.latency.labels(self.api, label),
            )
        children[0].inc()
        children[1].observe(seconds)


class GenerationMetrics:
    """The children of one generative model (``@openai.generate``), looked up once."""

    __slots__ = ("active", "model", "step_batch_size", "time_to_first_token", "tokens")

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.model = model
        self.active = metrics.active_generations.labels(model)
        self.step_batch_size = metrics.step_batch_size.labels(model)
        self.tokens = metrics.generated_tokens.labels(model)
        self.time_to_first_token = metrics.time_to_first_token.labels(model)


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms stay in the sums)."""
    if multiprocess_dir() is not None:
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
