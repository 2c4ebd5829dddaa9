"""Push and pull throughput of a bundle with a 200 MB artifact, to a directory store and to a
real OCI registry (Debian's docker-registry on 127.0.0.1), and the time of a second push
with nothing changed. Prints figures; it is a benchmark, not a test.

    .venv/bin/python bench/store_bench.py [--size-mb 200] [--runs 3]

Each push goes to an empty store and each pull into an empty MODELBUNDLE_HOME, so every
byte moves; the lock cache is shared with the tests (a warm cache builds in about a second).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(tempfile.gettempdir()) / "modelbundle-test-cache"
SERVICE = '''\
from modelbundle import Artifact, Service, api


class Weights(Service):
    weights = Artifact("file", path="weights.bin")

    @api
    def size(self, unit: str) -> int:
        return self.weights.stat().st_size
'''


def cli(*args: str, home: Path) -> float:
    """Run ``bundle ARGS`` and return its wall-clock seconds."""
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(CACHE_DIR)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "modelbundle", *args, "-q"], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def build_bundle(work: Path, size_mb: int) -> tuple[Path, str, int]:
    project, home = work / "project", work / "home"
    project.mkdir()
    (project / "service.py").write_text(SERVICE)
    with open(project / "weights.bin", "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))  # incompressible, like real weights
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(CACHE_DIR)}
    tag = subprocess.run(
        [sys.executable, "-m", "modelbundle", "build", f"{project}/service.py:Weights", "-o", "tag"],
        check=True, env=env, capture_output=True, text=True,
    ).stdout.strip()
    size = sum(p.stat().st_size for p in (home / "bundles").rglob("*") if p.is_file())
    return home, tag, size


@contextmanager
def registry(work: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = work / f"registry-{port}"
    root.mkdir()
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"oci://127.0.0.1:{port}/bench"
    finally:
        proc.terminate()
        proc.wait()


def measure(kind: str, new_store: Callable[[], str], home: Path, tag: str, size: int, runs: int, work: Path) -> list[str]:
    pushes, pulls, repushes = [], [], []
    for run in range(runs):
        store = new_store()
        pushes.append(cli("push", tag, store, home=home))
        repushes.append(cli("push", tag, store, home=home))
        pulled_home = work / f"pulled-{kind}-{run}"
        pulls.append(cli("pull", f"{store}/{tag}", home=pulled_home))
        shutil.rmtree(pulled_home)
    mb = size / 1e6
    push, pull, again = statistics.median(pushes), statistics.median(pulls), statistics.median(repushes)
    return [
        f"{kind:<10} {mb / push:>10.0f} {push:>9.2f} {mb / pull:>10.0f} {pull:>9.2f} {again:>14.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("docker-registry") is None:
        sys.exit("docker-registry is not installed (apt-get install -y docker-registry)")
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        work = Path(tmp)
        home, tag, size = build_bundle(work, args.size_mb)
        print(f"bundle {tag}: {size / 1e6:.0f} MB; median of {args.runs} runs; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        print(f"{'store':<10} {'push MB/s':>10} {'push s':>9} {'pull MB/s':>10} {'pull s':>9} {'re-push s':>14}")
        counter = iter(range(10**6))
        rows = measure("directory", lambda: f"file://{work / f'store-{next(counter)}'}", home, tag, size, args.runs, work)
        for row in rows:
            print(row)
        with registry(work) as base:
            rows = measure("oci", lambda: f"{base}{next(counter)}", home, tag, size, args.runs, work)
        for row in rows:
            print(row)
        print("re-push: a second push of the same bundle (nothing to send); times include the CLI's start-up")


if __name__ == "__main__":
    main()
