"""Wheels benchmark: fetching the iris lock's wheels for the image platform (linux/amd64, the bundle's
Python) into an empty wheel cache, one after another and in parallel, in one run.

- pip download: what containerize did before, one `pip download -r` of every pin for the platform;
- find_wheels, 1 worker: the bundler's fetch (index pages + digest-checked downloads), serially;
- find_wheels, N workers: the same, N pins at a time (what containerize and the Lambda export do now).

Every run starts from an empty wheel cache; modelbundle's own pin is left out (its wheel is built, not
downloaded). pip's HTTP cache (~/.cache/pip) is left as it is and reported: pip download may
read from it, find_wheels does not use it. The lock comes from building examples/iris in a scratch home
(its lock cached in a persistent folder, untimed), or from --lock. Prints a table; always exits 0.

    .venv/bin/python bench/wheels_bench.py [--runs 3] [--workers 8] [--lock path/to/requirements.lock]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelbundle.bundler import (
    FAST_FAIL_PIP_ARGS,
    FETCH_WORKERS,
    Reporter,
    WheelCache,
    find_wheels,
    read_lock,
    run_pip,
)
from modelbundle.exporters.docker import ImagePlatform

REPO = Path(__file__).resolve().parents[1]
IRIS = REPO / "examples" / "iris"
LOCK_CACHE = Path(tempfile.gettempdir()) / "modelbundle-wheels-bench-cache"


def iris_lock(root: Path) -> Path:
    project = root / "iris"
    project.mkdir()
    for name in ("service.py", "train.py"):
        shutil.copy(IRIS / name, project / name)
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
    env = {**os.environ, "MODELBUNDLE_HOME": str(root / "home"), "MODELBUNDLE_CACHE_DIR": str(LOCK_CACHE)}
    result = subprocess.run(
        [sys.executable, "-m", "modelbundle", "build", f"{project}/service.py:IrisClassifier", "-o", "tag", "-q"],
        env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        sys.exit(f"bundle build failed:\n{result.stderr}")
    name, _, version = result.stdout.strip().partition(":")
    return root / "home" / "bundles" / name / version / "env" / "requirements.lock"


def fresh_cache(root: Path, label: str) -> WheelCache:
    cache = WheelCache(root / f"cache-{label}" / "wheels")
    cache.directory.mkdir(parents=True)
    return cache


def without_modelbundle(lock: Path, root: Path) -> Path:
    """The lock less modelbundle's own pin: its wheel is built, never fetched (and a --lock's may be gone)."""
    kept = [dist.text for dist in read_lock(lock) if dist.name != "modelbundle"]
    path = root / "requirements.lock"
    path.write_text("\n".join(kept) + "\n")
    return path


def pip_download(lock: Path, platform: ImagePlatform, cache: WheelCache, out: Path) -> float:
    started = time.perf_counter()
    result = run_pip([
        "download", "--quiet", "--no-deps", "--require-hashes", *FAST_FAIL_PIP_ARGS, *platform.pip_args(),
        "--find-links", str(cache.directory), "-d", str(out), "-r", str(lock),
    ])
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"pip download failed:\n{result.stderr}")
    return elapsed


def fetch(lock: Path, platform: ImagePlatform, cache: WheelCache, workers: int) -> float:
    started = time.perf_counter()
    found = find_wheels(read_lock(lock), platform.wheels, cache, Reporter(quiet=True), workers=workers)
    elapsed = time.perf_counter() - started
    if found.missing:
        sys.exit(f"find_wheels missed: {', '.join(m.dist.pin for m in found.missing)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=FETCH_WORKERS)
    parser.add_argument("--lock", type=Path)
    args = parser.parse_args()
    pip_cache = Path(run_pip(["cache", "dir"]).stdout.strip() or Path.home() / ".cache" / "pip")
    http_cache = pip_cache / "http-v2"
    cached_files = sum(1 for p in http_cache.rglob("*") if p.is_file()) if http_cache.is_dir() else 0

    with tempfile.TemporaryDirectory(prefix="wheels-bench-") as scratch:
        root = Path(scratch)
        lock = without_modelbundle(args.lock or iris_lock(root), root)
        platform = ImagePlatform.parse("linux/amd64", "{}.{}".format(*sys.version_info[:2]))
        pins = len(read_lock(lock))
        rows: dict[str, list[float]] = {"pip download (one process, serial)": [], "find_wheels, 1 worker": [], f"find_wheels, {args.workers} workers": []}
        for run in range(args.runs):
            # interleaved, so that a slow moment of the network or the machine falls on every mode alike
            rows["pip download (one process, serial)"].append(
                pip_download(lock, platform, fresh_cache(root, f"pip-{run}"), root / f"pip-out-{run}")
            )
            rows["find_wheels, 1 worker"].append(fetch(lock, platform, fresh_cache(root, f"serial-{run}"), 1))
            rows[f"find_wheels, {args.workers} workers"].append(
                fetch(lock, platform, fresh_cache(root, f"parallel-{run}"), args.workers)
            )

    print(f"the wheels of the iris lock ({pins} pins, modelbundle's aside) for {platform.docker}, CPython {platform.python_version}, "
          f"into an empty wheel cache; {args.runs} runs each")
    state = f"warm ({cached_files} files in {http_cache})" if cached_files else f"empty ({http_cache})"
    print(f"pip's HTTP cache: {state}; find_wheels does not read it")
    print(f"{'':<40}{'median':>9} {'min':>8} {'max':>8}")
    for what, values in rows.items():
        print(f"{what:<40}{statistics.median(values):8.2f}s {min(values):7.2f}s {max(values):7.2f}s")


if __name__ == "__main__":
    main()
