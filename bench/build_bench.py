"""Build and start-up benchmark: `bundle build` of the iris example with a warm cache, and the
time `bundle serve` takes from process start to the first 200 from GET /readyz.

Every build runs in a fresh, temporary MODELBUNDLE_HOME (so it really builds and commits a
bundle) while MODELBUNDLE_CACHE_DIR points at a persistent cache, warmed by one untimed
build first: the timed builds reuse the modelbundle wheel and the cached environment lock,
which is the everyday "rebuild after a code change" case. Serving is timed twice: the built
bundle from the store (RECORD verified, artifacts loaded from the bundle) and the module
served directly. Prints a table and always exits 0: it measures, it does not gate.

    .venv/bin/python bench/build_bench.py [--runs 5] [--cache-dir /tmp/modelbundle-bench-cache]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
IRIS_DIR = REPO_ROOT / "examples" / "iris"
TARGET = "examples/iris/service.py:IrisClassifier"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "modelbundle-bench-cache"
HOST = "127.0.0.1"

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0  # above the server's 30 s graceful timeout
POLL_INTERVAL_S = 0.01


@dataclass
class Timing:
    what: str
    seconds: list[float]

    def row(self) -> str:
        s = self.seconds
        return (
            f"{self.what:<48} {len(s):>4} {statistics.median(s):>9.3f} {min(s):>9.3f} {max(s):>9.3f}"
        )


def bundle_command() -> list[str]:
    """The `bundle` console script of the interpreter running this file (the project's venv)."""
    script = Path(sys.executable).parent / "bundle"
    if not script.is_file():
        sys.exit(f"no bundle command beside {sys.executable}; run this with the project's .venv/bin/python")
    return [str(script)]


def bench_env(home: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MODELBUNDLE_HOME"] = str(home)
    env["MODELBUNDLE_CACHE_DIR"] = str(cache)
    env.pop("MODELBUNDLE_PORT", None)
    return env


def ensure_model() -> None:
    if (IRIS_DIR / "model.joblib").is_file():
        return
    print("examples/iris/model.joblib is missing; training it", flush=True)
    subprocess.run([sys.executable, str(IRIS_DIR / "train.py")], cwd=REPO_ROOT, check=True)


# -- build -----------------------------------------------------------------------------------
def build_once(home: Path, cache: Path) -> tuple[float, str]:
    """Wall-clock seconds of one `bundle build -o tag`, and the tag it printed."""
    started = time.perf_counter()
    result = subprocess.run(
        [*bundle_command(), "build", TARGET, "-o", "tag"],
        cwd=REPO_ROOT, env=bench_env(home, cache), capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"bundle build failed ({result.returncode}):\n{result.stderr}")
    return elapsed, result.stdout.strip().splitlines()[-1]


# -- serve -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def serve_once(target: str, home: Path, cache: Path, log: Path) -> float:
    """Seconds from spawning `bundle serve` to the first 200 from /readyz; then SIGTERM."""
    port = free_port()
    command = [*bundle_command(), "serve", target, "--host", HOST, "--port", str(port), "--no-access-log"]
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=bench_env(home, cache), stdout=out, stderr=subprocess.STDOUT
        )
        try:
            while not ready(port):
                if process.poll() is not None:
                    sys.exit(f"bundle serve {target} exited with {process.returncode}:\n{log.read_text()}")
                if time.perf_counter() - started > READY_TIMEOUT_S:
                    sys.exit(f"bundle serve {target} was not ready after {READY_TIMEOUT_S:.0f} s:\n{log.read_text()}")
                time.sleep(POLL_INTERVAL_S)
            elapsed = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return elapsed


# -- main ------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each step [5]")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"shared wheel/lock cache [{DEFAULT_CACHE}]")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    cache = args.cache_dir.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    ensure_model()

    with tempfile.TemporaryDirectory(prefix="modelbundle-build-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        warm_seconds, tag = build_once(scratch / "warm-home", cache)
        print(f"warm-up build (untimed): {warm_seconds:.2f} s -> {tag}; cache {cache}", flush=True)

        build_times, tags = [], set()
        for run in range(args.runs):
            home = scratch / f"home-{run}"  # fresh store: the build really runs and commits
            seconds, built = build_once(home, cache)
            build_times.append(seconds)
            tags.add(built)
        if tags != {tag}:
            print(f"note: builds gave different tags: {sorted(tags | {tag})}")

        serve_home = scratch / "home-0"
        from_store = [serve_once(tag, serve_home, cache, scratch / f"serve-bundle-{i}.log") for i in range(args.runs)]
        from_module = [serve_once(TARGET, serve_home, cache, scratch / f"serve-module-{i}.log") for i in range(args.runs)]

    timings = [
        Timing("bundle build (warm cache, fresh home)", build_times),
        Timing(f"bundle serve {tag} -> /readyz 200", from_store),
        Timing("bundle serve <module> -> /readyz 200", from_module),
    ]
    print()
    print(f"{'step (wall clock, seconds)':<48} {'runs':>4} {'median':>9} {'min':>9} {'max':>9}")
    for timing in timings:
        print(timing.row())
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs, target {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
