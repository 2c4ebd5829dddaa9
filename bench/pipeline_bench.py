"""Composition benchmark: examples/pipeline at c=64, in one process and with --split, against plain calls.

Three servers, each its own ``bundle serve`` on 127.0.0.1, one at a time: the
pipeline in one process (three services, the model's batcher in between), the
same with ``--split`` (a process per service, calls over loopback HTTP), and
``pipeline_plain.py`` (the same three stages as one service's plain function
calls). wrk drives ``/classify`` with ``pipeline_post.lua`` after a warm-up.
Prints req/s, p50/p99 and the model's mean batch size, writes
bench/results/pipeline_bench.json, and always exits 0: it measures, it does not gate.

    .venv/bin/python bench/pipeline_bench.py [--duration 10] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from serve_bench import (
    HOST,
    REPO_ROOT,
    RESULTS_DIR,
    bundle_executable,
    free_port,
    run_wrk,
    stop_server,
    wait_until_ready,
)

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "pipeline_post.lua"
PIPELINE = "examples/pipeline/service.py:Pipeline"
PLAIN = "bench/pipeline_plain.py:PlainPipeline"

#: server -> (target, extra flags)
SERVERS: dict[str, tuple[str, list[str]]] = {
    "one-process": (PIPELINE, []),
    "split": (PIPELINE, ["--split"]),
    "plain-calls": (PLAIN, []),
}
_SPLIT_SERVICE = re.compile(r"service Classifier serves on (http://127\.0\.0\.1:\d+)")


@dataclass
class RunResult:
    server: str
    concurrency: int
    requests: int
    req_per_s: float
    p50_ms: float
    p99_ms: float
    #: rows per Classifier.predict call (None for plain calls, which have no batcher)
    mean_batch: float | None
    non_2xx: int
    socket_errors: int


@dataclass
class Running:
    url: str
    #: where the model's batch-size histogram is, and under which api label
    metrics_url: str | None
    metrics_api: str


@contextmanager
def running_server(server: str) -> Iterator[Running]:
    target, flags = SERVERS[server]
    port = free_port()
    log_path = RESULTS_DIR / f"pipeline-{server}.log"
    command = [bundle_executable(), "serve", target, "--host", HOST, "--port", str(port), "--no-access-log", *flags]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://{HOST}:{port}"
            wait_until_ready(process, url, log_path)
            if server == "split":  # the model runs in its own process: its /metrics, its own API name
                match = _SPLIT_SERVICE.search(log_path.read_text())
                yield Running(url, match.group(1) if match else None, "predict")
            elif server == "one-process":  # the entry's /metrics labels a dependency's API <service>.<api>
                yield Running(url, url, "Classifier.predict")
            else:
                yield Running(url, None, "")
        finally:
            stop_server(process)


def batch_counters(running: Running) -> tuple[float, float] | None:
    if running.metrics_url is None:
        return None
    with urllib.request.urlopen(f"{running.metrics_url}/metrics", timeout=10.0) as response:
        text = response.read().decode()
    found = {"sum": 0.0, "count": 0.0}
    for kind in found:
        series = f'modelbundle_batch_size_{kind}{{api="{running.metrics_api}"}} '
        found[kind] = sum(float(line[len(series):]) for line in text.splitlines() if line.startswith(series))
    return found["sum"], found["count"]


def check_answer(url: str) -> None:
    """One request before measuring, so a broken server fails loudly instead of benchmarking errors."""
    body = json.dumps({"measurements": [6.7, 3.0, 5.2, 2.3]}).encode()
    request = urllib.request.Request(f"{url}/classify", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10.0) as response:
        answer = json.loads(response.read())
    if answer.get("label") != "virginica":
        raise RuntimeError(f"{url}/classify answered {answer!r}, not virginica")


def measure(server: str, running: Running, concurrency: int, args: argparse.Namespace) -> RunResult:
    run_wrk(running.url, concurrency, args.warmup, args.threads, "/classify", LUA_SCRIPT)
    before = batch_counters(running)
    stats = run_wrk(running.url, concurrency, args.duration, args.threads, "/classify", LUA_SCRIPT)
    after = batch_counters(running)
    mean_batch = None
    if before is not None and after is not None and after[1] > before[1]:
        mean_batch = (after[0] - before[0]) / (after[1] - before[1])
    duration_s = stats["duration_us"] / 1e6
    return RunResult(
        server=server,
        concurrency=concurrency,
        requests=stats["requests"],
        req_per_s=stats["requests"] / duration_s if duration_s else 0.0,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        mean_batch=mean_batch,
        non_2xx=stats["non_2xx"],
        socket_errors=sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
    )


def print_table(results: list[RunResult]) -> None:
    print(f"{'server':<12} {'c':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'errors':>7}")
    for r in results:
        batch = f"{r.mean_batch:.1f}" if r.mean_batch is not None else "-"
        print(
            f"{r.server:<12} {r.concurrency:>4} {r.req_per_s:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{batch:>6} {r.non_2xx + r.socket_errors:>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measured run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS), default=list(SERVERS))
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    results = []
    for server in args.servers:
        started = time.monotonic()
        with running_server(server) as running:
            check_answer(running.url)
            for concurrency in args.concurrency:
                results.append(measure(server, running, concurrency, args))
        print(f"  {server}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print_table(results)
    (RESULTS_DIR / "pipeline_bench.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
