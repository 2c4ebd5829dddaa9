"""What the body-read timeout and the header limits cost on the normal path: req/s at c=64.

Serves examples/mlp (batched) with the modelbundle found under ``--src`` (default: this
checkout's), drives it with ApacheBench (``ab``, from apache2-utils) at ``--concurrency``
for ``--duration`` seconds after a one-second warm-up, and prints one line of figures.
Run it once per source tree to compare, e.g. the code before the limits and after:

    git archive 9f7dff2 src | tar -x -C /tmp/before
    .venv/bin/python bench/limits_bench.py --src /tmp/before/src
    .venv/bin/python bench/limits_bench.py

A benchmark, not a test: it measures and always exits 0 once the server answered.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MLP_TARGET = "examples/mlp/service.py:MLP"
BODY = json.dumps({"x": [[round(0.01 * i, 2) for i in range(64)]]}).encode()
READY_TIMEOUT_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=REPO_ROOT / "src", help="the folder holding the modelbundle package to serve")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds of the measured run")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (ab -k); default: one per request")
    args = parser.parse_args()
    if shutil.which("ab") is None:
        sys.exit("needs ApacheBench: apt-get install apache2-utils")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "MLP_CALL_OVERHEAD_MS": "0"}
    command = [sys.executable, "-m", "modelbundle", "serve", MLP_TARGET, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(BODY)
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{port}/predict"
            _wait_ready(server, port)
            _ab(url, body_file, args.concurrency, 1, args.keep_alive)  # warm-up
            figures = _ab(url, body_file, args.concurrency, args.duration, args.keep_alive)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    served = subprocess.run(
        [sys.executable, "-c", "import modelbundle, os; print(os.path.dirname(modelbundle.__file__))"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(
        f"{served}: c={args.concurrency} {'keep-alive' if args.keep_alive else 'new connections'} "
        f"{args.duration}s: {figures['rps']:.0f} req/s, mean {figures['mean_ms']:.1f} ms, "
        f"{figures['errors']} connection errors, {figures['non_2xx']} non-2xx"
    )


def _ab(url: str, body_file: Path, concurrency: int, seconds: int, keep_alive: bool) -> dict[str, float]:
    command = ["ab", "-q", "-c", str(concurrency), "-t", str(seconds), "-n", "10000000", "-p", str(body_file), "-T", "application/json"]
    output = subprocess.run([*command, *(["-k"] if keep_alive else []), url], capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    return {
        "rps": number(r"Requests per second:\s+([\d.]+)"),
        "requests": int(number(r"Complete requests:\s+(\d+)")),
        "mean_ms": number(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)"),
        # ab's "Length" failures are not errors: batched float32 answers differ in their last digits
        "errors": int(sum(number(rf"{kind}: (\d+)") for kind in ("Connect", "Receive", "Exceptions"))),
        "non_2xx": int(number(r"Non-2xx responses:\s+(\d+)")),
    }


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
