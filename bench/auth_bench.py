"""What API keys, a rate limit and CORS cost on the hot path: req/s at c=64, each setting in the same run.

Serves examples/mlp (batched, no call overhead) once per setting below, drives each with
ApacheBench (``ab``, from apache2-utils) at ``--concurrency`` for ``--duration`` seconds
after a one-second warm-up, sending the key where one is needed, and prints a line per
setting with its req/s and its change against the first (no access control). The rate
limit is set far above what the machine can serve, so every request takes its token and
none is refused: what is measured is the bucket's cost.

    .venv/bin/python bench/auth_bench.py [--keep-alive] [--duration 10]

A benchmark, not a test: it measures and always exits 0 once the servers answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from limits_bench import MLP_TARGET, REPO_ROOT, _free_port, _wait_ready

BODY = json.dumps({"x": [[round(0.01 * i, 2) for i in range(64)]]}).encode()
KEY = "bench-key-0123456789abcdef"
#: (label, extra serve flags, extra env, headers ab sends)
SETTINGS: list[tuple[str, list[str], dict[str, str], list[str]]] = [
    ("no access control", [], {}, []),
    ("API key (Bearer)", [], {"MODELBUNDLE_API_KEYS": KEY}, [f"Authorization: Bearer {KEY}"]),
    ("API key + rate limit + CORS", ["--rate-limit", "1000000/s", "--cors-origin", "https://app.test"],
     {"MODELBUNDLE_API_KEYS": KEY}, [f"Authorization: Bearer {KEY}", "Origin: https://app.test"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (ab -k); default: one per request")
    args = parser.parse_args()
    if shutil.which("ab") is None:
        sys.exit("needs ApacheBench: apt-get install apache2-utils")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(BODY)
        for label, flags, env, headers in SETTINGS:
            port = _free_port()
            command = [sys.executable, "-m", "modelbundle", "serve", MLP_TARGET, "--port", str(port),
                       "--no-access-log", "--log-level", "warning", *flags]
            server = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "MLP_CALL_OVERHEAD_MS": "0", **env})
            try:
                _wait_ready(server, port)
                url = f"http://127.0.0.1:{port}/predict"
                _ab(url, body_file, headers, args.concurrency, 1, args.keep_alive)  # warm-up
                results.append((label, _ab(url, body_file, headers, args.concurrency, args.duration, args.keep_alive)))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(60)
    base = results[0][1]["rps"]
    mode = "keep-alive" if args.keep_alive else "new connections"
    for label, figures in results:
        change = 100 * (figures["rps"] / base - 1) if base else 0.0
        print(
            f"{label:30} c={args.concurrency} {mode} {args.duration}s: {figures['rps']:.0f} req/s ({change:+.1f}%), "
            f"mean {figures['mean_ms']:.1f} ms, {figures['errors']} connection errors, {figures['non_2xx']} non-2xx"
        )


def _ab(url: str, body_file: Path, headers: list[str], concurrency: int, seconds: int, keep_alive: bool) -> dict[str, float]:
    command = ["ab", "-q", "-c", str(concurrency), "-t", str(seconds), "-n", "10000000", "-p", str(body_file), "-T", "application/json"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run([*command, *(["-k"] if keep_alive else []), url], capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    return {
        "rps": number(r"Requests per second:\s+([\d.]+)"),
        "mean_ms": number(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)"),
        "errors": int(sum(number(rf"{kind}: (\d+)") for kind in ("Connect", "Receive", "Exceptions"))),
        "non_2xx": int(number(r"Non-2xx responses:\s+(\d+)")),
    }


if __name__ == "__main__":
    main()
