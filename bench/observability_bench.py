"""What the access log costs, and a lone client's tail with batching on and off (issue 20).

1. ``micro``: CPU per request of the access log in-process, every thread counted: none,
   uvicorn's as the runtime had it, ours in text and in JSON (steady on a shared machine).
2. ``access``: examples/mlp with a 0 ms model, served with the access log on (the default,
   text, to a file) and with ``--no-access-log``, each driven by wrk (``post.lua``) at c=64
   for ``--duration`` seconds after a warm-up; req/s and the server's CPU per request.
   Floor: on >= 90% of off.
3. ``tails``: the same service with a 2 ms and a 0 ms model, batching on and
   ``--no-batching`` (access log on, the default), each driven by one client sending one
   request after another on one keep-alive connection for ``--duration`` seconds; p50, p99
   and max. Floor: batched p99 <= 2x unbatched p99.

Each server is its own process on 127.0.0.1, one at a time. A benchmark, not a test: it
prints the figures and the floors, and exits 0. Needs wrk (``apt-get install wrk``).

    .venv/bin/python bench/observability_bench.py [--duration 10] [--part micro|access|tails]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "post.lua"
MLP_TARGET = "examples/mlp/service.py:MLP"
BODY = json.dumps({"x": [[round(0.01 * i, 2) for i in range(64)]]}).encode()
READY_TIMEOUT_S = 60.0
MIN_LOG_SHARE = 0.90
MICRO_REQUESTS = 50_000
#: the issue's figure for this server without an access log (0 ms model, c=64): what a request costs in all
ISSUE_RPS = 9382
MAX_TAIL_RATIO = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--concurrency", type=int, default=64, help="connections of the access-log runs")
    parser.add_argument("--part", choices=["micro", "access", "tails", "all"], default="all")
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    if args.part in ("micro", "all"):
        access_log_cpu()
    if args.part in ("access", "all"):
        access_log_cost(args.duration, args.concurrency)
    if args.part in ("tails", "all"):
        single_client_tails(args.duration)


def access_log_cpu() -> None:
    """CPU per request of each way to log it, every thread counted, in-process (best of 3).

    On a shared 2-core machine req/s swings by more than a log line costs; this times what a
    line adds around a minimal ASGI answer: no log, uvicorn's access log as the runtime had it
    (a ``logging`` call on the loop, the runtime's text formatter, a file), and ours in each
    format (its writer thread's formatting and writing included: ``time.process_time``).
    """
    import asyncio
    import logging

    from modelbundle.runtime._access_log import AccessLog, AccessLogWriter
    from modelbundle.runtime._log_format import TEXT_FORMAT

    scope = {
        "type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
        "http_version": "1.1", "client": ("127.0.0.1", 50000), "headers": [(b"content-type", b"application/json")],
    }
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3"), (b"x-request-id", b"ab-1")]}
    body = {"type": "http.response.body", "body": b"[0]"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send(body)

    async def send(message: Any) -> None:
        pass

    uvicorn_log = logging.getLogger("bench.uvicorn.access")
    uvicorn_log.propagate = False
    uvicorn_log.setLevel(logging.INFO)

    async def uvicorn_way(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        uvicorn_log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "POST", "/predict", "1.1", 200)

    async def run(handler: Any) -> None:
        for _ in range(MICRO_REQUESTS):
            await handler(dict(scope), None, send)

    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        file_handler = logging.FileHandler(Path(tmp) / "uvicorn.log")
        file_handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        uvicorn_log.handlers[:] = [file_handler]
        for _ in range(3):
            for name, log_format in (("no access log", None), ("uvicorn's (before)", None), ("ours, text", "text"), ("ours, json", "json")):
                handler: Any = uvicorn_way if name.startswith("uvicorn") else app
                writer = None
                if log_format is not None:
                    stream = (Path(tmp) / f"{log_format}.log").open("w")
                    writer = AccessLogWriter(log_format, stream=stream)  # type: ignore[arg-type]
                    handler = AccessLog(app, writer)
                cpu = time.process_time()
                asyncio.run(run(handler))
                if writer is not None:
                    writer.close()  # what its thread still had to write counts too
                    stream.close()
                best[name] = min(best.get(name, 1e9), (time.process_time() - cpu) / MICRO_REQUESTS * 1e6)
        file_handler.close()
    print("\naccess log CPU per request, in-process, every thread (best of 3)")
    base = best["no access log"]
    for name, cpu in best.items():
        added = cpu - base
        print(f"  {name:20} {cpu:6.2f} us  +{added:5.2f} us = {added / (1e6 / ISSUE_RPS):5.1%} of a request at {ISSUE_RPS} req/s")


def access_log_cost(duration: int, concurrency: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    figures = {}
    for name, flags in (("access log on", []), ("--no-access-log", ["--no-access-log"])):
        with _server(flags, overhead_ms=0, log_name=name) as (url, pid):
            _wrk(url, concurrency, 1)  # warm-up
            cpu_before = _cpu_seconds(pid)
            figures[name] = _wrk(url, concurrency, duration)
            figures[name]["cpu_us"] = (_cpu_seconds(pid) - cpu_before) * 1e6 / max(figures[name]["requests"], 1)
    on, off = figures["access log on"], figures["--no-access-log"]
    print(f"\naccess log (text, to a file), 0 ms model, c={concurrency}, {duration} s each")
    for name, result in figures.items():
        print(
            f"  {name:16} {result['rps']:8.0f} req/s  p99 {result['p99_us'] / 1000:6.2f} ms  "
            f"{result['cpu_us']:6.1f} us CPU/req  {result['non_2xx']} non-2xx, {result['errors']} errors"
        )
    share = on["rps"] / off["rps"] if off["rps"] else 0.0
    print(f"  on / off = {share:.1%} of req/s (floor {MIN_LOG_SHARE:.0%}): {'PASS' if share >= MIN_LOG_SHARE else 'FAIL'}")
    print(f"  CPU per request, on / off = {on['cpu_us'] / off['cpu_us']:.1%} (steadier than req/s on a shared machine)")


def single_client_tails(duration: int) -> None:
    # the example calibrates its CPU burn when it starts; on a busy machine two servers would burn
    # different amounts per call (a 2x spread seen here), so both get this process's figure
    os.environ["MLP_HASHES_PER_MS"] = f"{_mlp_burn_rate():.3f}"
    print(f"\none client, one keep-alive connection, {duration} s each, MLP_HASHES_PER_MS={os.environ['MLP_HASHES_PER_MS']}")
    print(f"  {'model':6} {'server':10} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for overhead in (2, 0):
        p99 = {}
        for name, flags in (("batched", []), ("unbatched", ["--no-batching"])):
            with _server(flags, overhead_ms=overhead, log_name=f"{name}-{overhead}ms") as (url, _pid):
                _one_client(url, 1.0)  # warm-up
                latencies = _one_client(url, duration)
            p50, p99[name], worst = _percentile(latencies, 50), _percentile(latencies, 99), max(latencies)
            print(f"  {overhead:4} ms {name:10} {len(latencies):8} {p50:8.2f} {p99[name]:8.2f} {worst:8.2f}")
        ratio = p99["batched"] / p99["unbatched"]
        verdict = "PASS" if ratio <= MAX_TAIL_RATIO else "FAIL"
        print(f"  {overhead:4} ms batched p99 / unbatched p99 = {ratio:.2f} (ceiling {MAX_TAIL_RATIO:g}): {verdict}")


def _mlp_burn_rate() -> float:
    """The example's own calibration of its CPU burn (buffer hashes per millisecond), run here once."""
    spec = importlib.util.spec_from_file_location("mlp_service", REPO_ROOT / "examples" / "mlp" / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return float(module._hashes_per_ms())


def _one_client(url: str, seconds: float) -> list[float]:
    """Milliseconds of each request, sent one after another on one connection."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port))
    headers = {"Content-Type": "application/json"}
    latencies = []
    end = time.perf_counter() + seconds
    try:
        while (started := time.perf_counter()) < end:
            connection.request("POST", "/predict", BODY, headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                sys.exit(f"the server answered {response.status}")
    finally:
        connection.close()
    return latencies


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


@contextmanager
def _server(flags: list[str], overhead_ms: float, log_name: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {**os.environ, "MLP_CALL_OVERHEAD_MS": str(overhead_ms)}
    command = [sys.executable, "-m", "modelbundle", "serve", MLP_TARGET, "--port", str(port), "--no-jobs", *flags]
    log_path = RESULTS_DIR / f"observability-{re.sub(r'[^a-z0-9]+', '-', log_name.lower()).strip('-')}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=log)
        try:
            _wait_ready(server, port)
            yield f"http://127.0.0.1:{port}/predict", server.pid
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


def _wrk(url: str, concurrency: int, seconds: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA_SCRIPT), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "requests": result["requests"],
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p99_us": result["p99_us"],
        "non_2xx": result["non_2xx"],
        "errors": errors,
    }


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("the server was not ready in time")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
