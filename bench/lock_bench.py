"""Lock benchmark: `bundle build` of the iris example, cold and warm, with `--resolver uv` and
`--resolver pip-tools`.

- cold: a fresh MODELBUNDLE_HOME, MODELBUNDLE_CACHE_DIR (so the modelbundle wheel is built
  again and no lock is cached), UV_CACHE_DIR and PIP_CACHE_DIR (both empty for either
  resolver: pip builds the modelbundle wheel in both cases);
- relock: the lock cache emptied, the resolver's cache kept (what a change to modelbundle's
  source or an installed package costs: the lock's inputs changed);
- warm: a fresh MODELBUNDLE_HOME only, so the build stages and commits a bundle with the
  lock from the cache (the everyday rebuild).

Medians over --runs for uv; pip-compile's cold lock takes minutes, so --pip-tools-runs is 1 by
default. Also says whether both resolvers gave the same bundle version (the same lock bytes).
Prints a table and always exits 0: it measures, it does not gate.

    .venv-test/bin/python bench/lock_bench.py [--runs 3] [--pip-tools-runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from build_bench import REPO_ROOT, TARGET, Timing, bundle_command, ensure_model

RESOLVERS = ("uv", "pip-tools")


def build_once(resolver: str, home: Path, cache: Path, tool_caches: Path) -> tuple[float, str]:
    """Wall-clock seconds of one `bundle build --resolver R -o tag`, and the tag it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUNDLE_")}
    env.update(
        MODELBUNDLE_HOME=str(home), MODELBUNDLE_CACHE_DIR=str(cache),
        UV_CACHE_DIR=str(tool_caches / "uv"), PIP_CACHE_DIR=str(tool_caches / "pip"),
    )
    started = time.perf_counter()
    result = subprocess.run(
        [*bundle_command(), "build", TARGET, "--resolver", resolver, "-o", "tag"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"bundle build --resolver {resolver} failed ({result.returncode}):\n{result.stderr}")
    return elapsed, result.stdout.strip().splitlines()[-1]


def bench_resolver(resolver: str, runs: int, scratch: Path) -> tuple[list[Timing], set[str]]:
    cold, relock, warm, tags = [], [], [], set()
    for run in range(runs):
        root = scratch / f"{resolver}-{run}"
        cache, tool_caches = root / "cache", root / "tool-caches"
        seconds, tag = build_once(resolver, root / "home-cold", cache, tool_caches)
        cold.append(seconds)
        tags.add(tag)
        print(f"  {resolver} run {run + 1}: cold {seconds:.2f} s -> {tag}", flush=True)
        shutil.rmtree(cache / "locks")
        seconds, tag = build_once(resolver, root / "home-relock", cache, tool_caches)
        relock.append(seconds)
        tags.add(tag)
        seconds, tag = build_once(resolver, root / "home-warm", cache, tool_caches)
        warm.append(seconds)
        tags.add(tag)
    return [
        Timing(f"--resolver {resolver}: cold build", cold),
        Timing(f"--resolver {resolver}: relock, warm tool cache", relock),
        Timing(f"--resolver {resolver}: warm rebuild (cached lock)", warm),
    ], tags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds with uv [3]")
    parser.add_argument("--pip-tools-runs", type=int, default=1, help="rounds with pip-compile (minutes each) [1]")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pip_tools_runs < 1:
        parser.error("--runs and --pip-tools-runs must be at least 1")
    ensure_model()

    timings, tags = [], {}
    with tempfile.TemporaryDirectory(prefix="modelbundle-lock-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for resolver, runs in zip(RESOLVERS, (args.runs, args.pip_tools_runs), strict=True):
            print(f"{resolver}: {runs} round(s) of cold, relock and warm builds", flush=True)
            rows, tags[resolver] = bench_resolver(resolver, runs, scratch)
            timings += rows

    print()
    print(f"{'step (wall clock, seconds)':<48} {'runs':>4} {'median':>9} {'min':>9} {'max':>9}")
    for timing in timings:
        print(timing.row())
    same = tags["uv"] == tags["pip-tools"] and len(tags["uv"]) == 1
    print(f"\nbundle versions: uv {sorted(tags['uv'])}, pip-tools {sorted(tags['pip-tools'])}"
          f" ({'the same lock bytes' if same else 'DIFFERENT'})")
    # the uv the build found first: the uv package's (python -m uv), else the one on PATH
    uv = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if not uv and shutil.which("uv"):
        uv = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, target {TARGET}{', ' + uv if uv else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
