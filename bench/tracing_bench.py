"""What OpenTelemetry tracing costs: req/s at c=64 with tracing off and with tracing exporting.

Serves examples/mlp (batched, ``MLP_CALL_OVERHEAD_MS=0``: the runtime's own cost dominates)
twice per round, once without any ``OTEL_*`` variable and once with
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a loopback OTLP/HTTP sink this script runs (it
answers 200 to every export and keeps the bodies; they are decoded only after the runs, so
the sink costs the machine little while it is measured), and with ``--ratio`` a third time
sampling that share of the traces that start here (``parentbased_traceidratio``: a caller's
sampled ``traceparent`` is always honoured). Each server is driven with
ApacheBench (``ab -k``, apache2-utils) at ``--concurrency`` for ``--duration`` seconds after
a one-second warm-up. Rounds alternate the modes (``--rounds``) so drift on a shared machine
hits each alike; it prints each run, then the median req/s of each and its ratio to off
against the issue's floor (tracing exporting costs at most 15%).

    .venv/bin/python bench/tracing_bench.py                  # 3 rounds of 10 s each: about 1.5 minutes
    .venv/bin/python bench/tracing_bench.py --rounds 5 --duration 20

Needs ``pip install 'modelbundle[otel]'`` in the interpreter that runs it (the server uses
the same one). A benchmark, not a test: it measures and exits 0 once the servers answered.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from limits_bench import BODY, MLP_TARGET, REPO_ROOT, _ab, _free_port, _wait_ready
from observability_bench import _cpu_seconds

FLOOR = 0.85  # issue 20: tracing on and exporting keeps at least 85% of the throughput with it off


class Sink:
    """A loopback OTLP/HTTP endpoint that accepts every trace export."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[bytes] = []

    def spans(self, start: int = 0) -> tuple[int, int] | None:
        """How many spans arrived since body ``start``, and how many of them were ``POST /predict`` (None without
        opentelemetry-proto to decode them)."""
        try:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )
        except ImportError:
            return None
        count = requests = 0
        for body in self.bodies[start:]:
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
                for scope in resource.scope_spans:
                    count += len(scope.spans)
                    requests += sum(span.name == "POST /predict" for span in scope.spans)
        return count, requests


@contextmanager
def sink() -> Iterator[Sink]:
    received: Sink

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector would

        def do_POST(self) -> None:
            received.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received = Sink(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def run(tracing: dict[str, str], body_file: Path, concurrency: int, duration: int) -> dict[str, float]:
    """ab's figures of the measured run, with the server's CPU per request and the requests of both runs."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # PYTHONPATH may come in ``tracing``
    env["MLP_CALL_OVERHEAD_MS"] = "0"
    env.update(tracing)
    command = [sys.executable, "-m", "modelbundle", "serve", MLP_TARGET, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    try:
        _wait_ready(server, port)
        url = f"http://127.0.0.1:{port}/predict"
        warm_up = _ab(url, body_file, concurrency, 1, True)
        cpu = _cpu_seconds(server.pid)
        figures = _ab(url, body_file, concurrency, duration, True)
        figures["cpu_us"] = (_cpu_seconds(server.pid) - cpu) * 1e6 / max(figures["requests"], 1)
        figures["all_requests"] = warm_up["requests"] + figures["requests"]
        return figures
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the modes, alternated")
    parser.add_argument(
        "--ratio", type=float, default=0.1,
        help="also measure head sampling: parentbased_traceidratio at this ratio (0: skip)",
    )
    parser.add_argument(
        "--before-src", type=Path,
        help="also measure exporting with the runtime of this src/ folder (another checkout's), for a before/after in one run",
    )
    args = parser.parse_args()
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, sink() as collector:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(BODY)
        modes = {"off": {}, "exporting": {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}}
        if args.ratio:
            modes[f"exporting {args.ratio:g}"] = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(args.ratio),
            }
        if args.before_src:
            modes["exporting before"] = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "PYTHONPATH": str(args.before_src.resolve())}
        for round_number in range(1, args.rounds + 1):
            for mode, tracing in modes.items():
                bodies = len(collector.bodies)
                figures = run(tracing, body_file, args.concurrency, args.duration)
                rates.setdefault(mode, []).append(figures["rps"])
                cpu.setdefault(mode, []).append(figures["cpu_us"])
                # the server has stopped: its shutdown exported what it still held
                counted = collector.spans(bodies)
                received = f", {counted[1]} request spans of {counted[0]} for {figures['all_requests']} requests" if counted and tracing else ""
                print(
                    f"round {round_number} tracing {mode:16}: {figures['rps']:7.0f} req/s, {figures['cpu_us']:6.1f} us CPU/req, "
                    f"mean {figures['mean_ms']:.1f} ms, {figures['errors']} connection errors, {figures['non_2xx']} non-2xx{received}",
                    flush=True,
                )
    off, off_cpu = statistics.median(rates.pop("off")), statistics.median(cpu.pop("off"))
    print(f"medians at c={args.concurrency}: tracing off {off:.0f} req/s, {off_cpu:.1f} us CPU/req")
    for mode, measured in rates.items():
        on, on_cpu = statistics.median(measured), statistics.median(cpu[mode])
        print(
            f"  tracing {mode}: {on:.0f} req/s, {on / off:.1%} of off (floor {FLOOR:.0%}): {'PASS' if on / off >= FLOOR else 'FAIL'}; "
            f"{on_cpu:.1f} us CPU/req, {on_cpu / off_cpu:.1%} of off (steadier than req/s on a shared machine)"
        )


if __name__ == "__main__":
    main()
