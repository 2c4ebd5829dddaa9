"""Containerize benchmark: cold and warm `bundle containerize` times for the iris example, and
the image's size against its parts (base image + venv + bundle).

- cold: an empty wheel cache (every wheel downloaded for the image's platform) and --no-cache
  (every layer built: venv install included);
- warm: the same command again (wheels from the cache, every layer from the engine's cache);
- code change: one line of service.py changed and the bundle rebuilt; only the code layer is new.

Every run uses a fresh MODELBUNDLE_HOME; bundles lock from a persistent cache (warmed first,
untimed), so the figures are containerize alone. Needs a running Docker engine and the base
image (scripts/ensure-docker.sh, scripts/build-base-image.sh). Prints a table; always exits 0.

    .venv/bin/python bench/containerize_bench.py [--runs 3] [--base-image modelbundle-base:bookworm-py3.11]
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

import docker

REPO = Path(__file__).resolve().parents[1]
IRIS = REPO / "examples" / "iris"
LOCK_CACHE = Path(tempfile.gettempdir()) / "modelbundle-bench-cache"
IMAGE = "modelbundle-bench/iris"


def bundle(*args: str, home: Path, cache: Path) -> str:
    env = {**os.environ, "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-m", "modelbundle", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bundle {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def timed(*args: str, home: Path, cache: Path) -> float:
    started = time.perf_counter()
    bundle(*args, home=home, cache=cache)
    return time.perf_counter() - started


def mib(size: float) -> str:
    return f"{size / 2**20:8.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-image", default="modelbundle-base:bookworm-py3.11")
    args = parser.parse_args()
    engine = docker.from_env()

    with tempfile.TemporaryDirectory(prefix="containerize-bench-") as scratch:
        root = Path(scratch)
        project = root / "iris"
        project.mkdir()
        for name in ("service.py", "train.py"):
            shutil.copy(IRIS / name, project / name)
        subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
        home = root / "home"
        tag = bundle("build", f"{project}/service.py:IrisClassifier", "-o", "tag", home=home, cache=LOCK_CACHE)
        common = ("containerize", tag, "--base-image", args.base_image, "-q")

        cold, warm, code = [], [], []
        for run in range(args.runs):
            # a wheel cache holding only the modelbundle wheel the lock names (it is built, not downloaded)
            cold_cache = root / f"cold-cache-{run}"
            (cold_cache / "wheels").mkdir(parents=True)
            for wheel in (LOCK_CACHE / "wheels").glob("modelbundle-*.whl"):
                shutil.copy(wheel, cold_cache / "wheels")
            cold.append(timed(*common, "--no-cache", "-t", f"{IMAGE}:cold", home=home, cache=cold_cache))
            warm.append(timed(*common, "-t", f"{IMAGE}:warm", home=home, cache=cold_cache))

        source = (project / "service.py").read_text()
        for run in range(args.runs):
            (project / "service.py").write_text(source.replace('"""The predicted class id of each row."""', f'"""Class ids ({run})."""'))
            changed = bundle("build", f"{project}/service.py:IrisClassifier", "-o", "tag", home=home, cache=LOCK_CACHE)
            code.append(timed("containerize", changed, "--base-image", args.base_image, "-q", "-t", f"{IMAGE}:code-{run}", home=home, cache=LOCK_CACHE))

        image = engine.images.get(f"{IMAGE}:warm")
        base = engine.images.get(args.base_image)
        venv = int(engine.containers.run(image.id, entrypoint=["du", "-sb", "/opt/venv"], remove=True).split()[0])
        bundle_size = int(engine.containers.run(image.id, entrypoint=["du", "-sb", "/opt/bundle"], remove=True).split()[0])
        parts = base.attrs["Size"] + venv + bundle_size
        # the layers the image adds, from its history (newest first): code, artifacts, venv
        added = [entry["Size"] for entry in image.history() if entry["Size"] > 0][: len(image.attrs["RootFS"]["Layers"]) - len(base.attrs["RootFS"]["Layers"])]
        for name in [f"{IMAGE}:cold", f"{IMAGE}:warm", *(f"{IMAGE}:code-{run}" for run in range(args.runs))]:
            engine.images.remove(name)

    print(f"bundle containerize of the iris example ({tag}), {args.runs} runs each, on {args.base_image}")
    print(f"{'':<58}{'median':>9} {'min':>8} {'max':>8}")
    for what, values in (
        ("cold (empty wheel cache, --no-cache)", cold),
        ("warm (same command again)", warm),
        ("after a one-line code change (bundle rebuilt)", code),
    ):
        print(f"{what:<58}{statistics.median(values):8.2f}s {min(values):7.2f}s {max(values):7.2f}s")
    print()
    print(f"image        {mib(image.attrs['Size'])}")
    print(f"  base       {mib(base.attrs['Size'])}")
    print(f"  venv       {mib(venv)}   (/opt/venv: the bundle's {tag} requirements.lock)")
    print(f"  bundle     {mib(bundle_size)}   (/opt/bundle)")
    print(f"  overhead   {mib(image.attrs['Size'] - parts)}   (image minus base + venv + bundle as du counts them)")
    print("layers added to the base, bottom up: " + ", ".join(mib(size).strip() for size in reversed(added)))


if __name__ == "__main__":
    main()
