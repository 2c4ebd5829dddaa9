"""Serving benchmark: the mlp example with batching on and off, and the bare-Starlette floor.

Each server runs as its own process on 127.0.0.1, one at a time, once per per-call
overhead (MLP_CALL_OVERHEAD_MS). wrk, another process, drives it at each
concurrency after a short warm-up. Prints one table per overhead and the floor
checks, writes bench/results/serve_bench.json, and always exits 0: it measures,
it does not gate.

    .venv/bin/python bench/serve_bench.py [--duration 5] [--concurrency 1 64] [--overhead 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "post.lua"
HOST = "127.0.0.1"
MLP_TARGET = "examples/mlp/service.py:MLP"

BATCHED, UNBATCHED, BARE = "batched", "unbatched", "bare-starlette"
SERVERS = (BATCHED, UNBATCHED, BARE)
BATCH_SUM = 'modelbundle_batch_size_sum{api="predict"}'
BATCH_COUNT = 'modelbundle_batch_size_count{api="predict"}'

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0  # above the server's 30 s graceful timeout
# a slow answer should land in p99, not vanish as a wrk timeout (its default is 2 s)
WRK_TIMEOUT = "10s"

# the floors from the issue
MIN_SPEEDUP_C64 = 6.0
MAX_P50_PENALTY_C1_MS = 0.5
MIN_SHARE_OF_BARE_C64 = 0.40


@dataclass
class RunResult:
    server: str
    overhead_ms: float
    concurrency: int
    requests: int
    duration_s: float
    req_per_s: float
    p50_ms: float
    p99_ms: float
    mean_batch: float | None  # measured for the batched server only
    non_2xx: int
    socket_errors: int
    # the server's user+system CPU over the run, per request: unlike req/s, barely moved by
    # other load on a shared machine, so it shows what each server costs
    cpu_us_per_request: float | None


@dataclass
class RunningServer:
    name: str
    url: str
    pid: int


@dataclass
class Check:
    name: str
    value: str
    floor: str
    passed: bool | None  # None when the runs it needs were not selected


# -- servers ---------------------------------------------------------------------------------
def server_command(server: str, port: int) -> list[str]:
    if server == BARE:
        return [sys.executable, str(BENCH_DIR / "bare_starlette.py"), "--host", HOST, "--port", str(port)]
    command = [
        bundle_executable(), "serve", MLP_TARGET, "--host", HOST, "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]
    if server == UNBATCHED:
        command.append("--no-batching")
    return command


def bundle_executable() -> str:
    # the console script of the venv running this file, so both use the same install
    beside_python = Path(sys.executable).with_name("bundle")
    found = str(beside_python) if beside_python.exists() else shutil.which("bundle")
    if found is None:
        sys.exit("cannot find the `bundle` command; run this with the project's venv python")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(server: str, overhead_ms: float) -> Iterator[RunningServer]:
    """Start ``server`` with this per-call overhead, yield it once ready, then SIGTERM it."""
    port = free_port()
    env = {**os.environ, "MLP_CALL_OVERHEAD_MS": f"{overhead_ms:g}"}
    log_path = RESULTS_DIR / f"{server}-{overhead_ms:g}ms.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(server, port), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://{HOST}:{port}"
            wait_until_ready(process, base_url, log_path)
            yield RunningServer(server, base_url, process.pid)
        finally:
            stop_server(process)


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return
        except OSError:  # not listening yet, or 503 while setup() runs
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {READY_TIMEOUT_S:g} s; see {log_path}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def check_answer(base_url: str) -> None:
    """One request before measuring, so a broken server fails loudly instead of benchmarking 4xx."""
    body = json.dumps({"x": [[0.1] * 64]}).encode()
    request = urllib.request.Request(
        f"{base_url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10.0) as response:
        scores = json.loads(response.read())
    if len(scores) != 1 or len(scores[0]) != 10:
        raise RuntimeError(f"{base_url}/predict answered {scores!r}, not one row of 10 scores")


# -- measuring -------------------------------------------------------------------------------
def run_wrk(
    base_url: str, concurrency: int, duration_s: int, threads: int, path: str = "/predict", script: Path = LUA_SCRIPT
) -> dict[str, Any]:
    """One wrk run; returns the JSON line that the script's done() prints (post.lua's shape)."""
    command = [
        "wrk", f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{duration_s}s",
        "--timeout", WRK_TIMEOUT, "--latency", "-s", str(script), f"{base_url}{path}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"wrk printed no result line:\n{output}")


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU time of a process, all its threads included (Linux /proc; else None)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name in parentheses may contain spaces
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def batch_counters(base_url: str) -> tuple[float, float]:
    """(sum, count) of the predict batch-size histogram, from GET /metrics."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10.0) as response:
        text = response.read().decode()
    values = {BATCH_SUM: 0.0, BATCH_COUNT: 0.0}
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series in values:
            values[series] = float(value)
    return values[BATCH_SUM], values[BATCH_COUNT]


def measure(server: RunningServer, overhead_ms: float, concurrency: int, args: argparse.Namespace) -> RunResult:
    # the warm-up fills first-use costs (BLAS buffers, the batcher's latency model)
    # and lets the previous level's queue drain before anything is counted
    run_wrk(server.url, concurrency, args.warmup, args.threads)
    batched = server.name == BATCHED
    counters_before = batch_counters(server.url) if batched else None
    cpu_before = cpu_seconds(server.pid)
    stats = run_wrk(server.url, concurrency, args.duration, args.threads)
    cpu_after = cpu_seconds(server.pid)
    mean_batch = None
    if counters_before is not None:
        rows_after, calls_after = batch_counters(server.url)
        calls = calls_after - counters_before[1]
        mean_batch = (rows_after - counters_before[0]) / calls if calls else None
    cpu_per_request = None
    if cpu_before is not None and cpu_after is not None and stats["requests"]:
        cpu_per_request = (cpu_after - cpu_before) / stats["requests"] * 1e6
    duration_s = stats["duration_us"] / 1e6
    return RunResult(
        server=server.name,
        overhead_ms=overhead_ms,
        concurrency=concurrency,
        requests=stats["requests"],
        duration_s=duration_s,
        req_per_s=stats["requests"] / duration_s if duration_s else 0.0,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        mean_batch=mean_batch,
        non_2xx=stats["non_2xx"],
        socket_errors=sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        cpu_us_per_request=cpu_per_request,
    )


def benchmark(args: argparse.Namespace) -> list[RunResult]:
    results = []
    for overhead_ms in args.overhead:
        for server in args.servers:
            with running_server(server, overhead_ms) as running:
                check_answer(running.url)
                for concurrency in args.concurrency:
                    result = measure(running, overhead_ms, concurrency, args)
                    print(f"  {server} {overhead_ms:g} ms c={concurrency}: {result.req_per_s:.0f} req/s", file=sys.stderr)
                    results.append(result)
    return results


# -- the floors ------------------------------------------------------------------------------
def find(results: Sequence[RunResult], server: str, overhead_ms: float, concurrency: int) -> RunResult | None:
    for result in results:
        if (result.server, result.overhead_ms, result.concurrency) == (server, overhead_ms, concurrency):
            return result
    return None


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def skipped(name: str, floor: str) -> Check:
    return Check(name, "n/a", floor, None)


def speedup_check(results: Sequence[RunResult]) -> Check:
    name, floor = "1a. c=64, 2 ms: batched / unbatched req/s", f">= {MIN_SPEEDUP_C64:g}x"
    batched, unbatched = find(results, BATCHED, 2.0, 64), find(results, UNBATCHED, 2.0, 64)
    if batched is None or unbatched is None:
        return skipped(name, floor)
    speedup = ratio(batched.req_per_s, unbatched.req_per_s)
    return Check(name, f"{speedup:.2f}x", floor, speedup >= MIN_SPEEDUP_C64)


def no_errors_check(results: Sequence[RunResult]) -> Check:
    name, floor = "1b. c=64, 2 ms: batched non-2xx", "0"
    batched = find(results, BATCHED, 2.0, 64)
    if batched is None:
        return skipped(name, floor)
    return Check(name, str(batched.non_2xx), floor, batched.non_2xx == 0)


def lone_request_check(results: Sequence[RunResult]) -> Check:
    name, floor = "2.  c=1,  2 ms: batched p50 - unbatched p50", f"<= {MAX_P50_PENALTY_C1_MS:g} ms"
    batched, unbatched = find(results, BATCHED, 2.0, 1), find(results, UNBATCHED, 2.0, 1)
    if batched is None or unbatched is None:
        return skipped(name, floor)
    penalty = batched.p50_ms - unbatched.p50_ms
    return Check(name, f"{penalty:+.3f} ms", floor, penalty <= MAX_P50_PENALTY_C1_MS)


def runtime_cost_check(results: Sequence[RunResult]) -> Check:
    name, floor = "3.  c=64, 0 ms: batched / bare-starlette req/s", f">= {MIN_SHARE_OF_BARE_C64:.0%}"
    batched, bare = find(results, BATCHED, 0.0, 64), find(results, BARE, 0.0, 64)
    if batched is None or bare is None:
        return skipped(name, floor)
    share = ratio(batched.req_per_s, bare.req_per_s)
    return Check(name, f"{share:.0%}", floor, share >= MIN_SHARE_OF_BARE_C64)


def floor_checks(results: Sequence[RunResult]) -> list[Check]:
    return [
        speedup_check(results),
        no_errors_check(results),
        lone_request_check(results),
        runtime_cost_check(results),
    ]


# -- reporting -------------------------------------------------------------------------------
def print_header(revision: str, load: Sequence[float]) -> None:
    print(f"modelbundle {revision}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")


def print_tables(results: Sequence[RunResult], args: argparse.Namespace) -> None:
    header = (
        f"{'server':<15} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10} "
        f"{'non-2xx':>8} {'sock err':>8} {'cpu us/req':>10}"
    )
    for overhead_ms in args.overhead:
        print(f"\nper-call overhead {overhead_ms:g} ms (MLP_CALL_OVERHEAD_MS={overhead_ms:g}), {args.duration} s per run")
        print(header)
        print("-" * len(header))
        for result in results:
            if result.overhead_ms != overhead_ms:
                continue
            batch = f"{result.mean_batch:.1f}" if result.mean_batch is not None else "-"
            cpu = f"{result.cpu_us_per_request:.0f}" if result.cpu_us_per_request is not None else "-"
            print(
                f"{result.server:<15} {result.concurrency:>5} {result.req_per_s:>9.0f} {result.p50_ms:>8.2f} "
                f"{result.p99_ms:>8.2f} {batch:>10} {result.non_2xx:>8} {result.socket_errors:>8} {cpu:>10}"
            )


def print_checks(checks: Sequence[Check]) -> None:
    print("\nfloor checks")
    for check in checks:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP (runs not selected)"}[check.passed]
        print(f"{check.name:<50} {check.value:>12}   floor {check.floor:<10} {verdict}")


def source_revision() -> str:
    """The commit measured, with "+dirty" when the work tree differs from it."""
    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def write_json(
    path: Path,
    results: Sequence[RunResult],
    checks: Sequence[Check],
    args: argparse.Namespace,
    revision: str,
    load: Sequence[float],
) -> None:
    settings = {
        "source": revision,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "wrk_threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_at_start": list(load),
    }
    document = {"settings": settings, "runs": [asdict(r) for r in results], "checks": [asdict(c) for c in checks]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- command line ----------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each run (default 1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256], help="wrk connections")
    parser.add_argument("--overhead", type=float, nargs="+", default=[2.0, 0.0], help="MLP_CALL_OVERHEAD_MS values")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the machine has 2 cores)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "serve_bench.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # the machine is shared: a busy start is worth knowing when reading the figures
    load = os.getloadavg()
    revision = source_revision()
    results = benchmark(args)
    checks = floor_checks(results)
    print_header(revision, load)
    print_tables(results, args)
    print_checks(checks)
    write_json(args.output, results, checks, args, revision, load)
    print(f"\nresults written to {args.output}")
    return 0  # a benchmark reports; it never fails the build


if __name__ == "__main__":
    sys.exit(main())
