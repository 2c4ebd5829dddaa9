"""Fast, lean builds in one run: what a new user meets with the iris and text examples.

For each example, with empty caches (a fresh MODELBUNDLE_HOME, MODELBUNDLE_CACHE_DIR,
UV_CACHE_DIR and PIP_CACHE_DIR) and again warm:

- `bundle build`, locking with uv and with pip-compile (`--resolver uv|pip-tools`), side by side;
- `bundle containerize`: cold (`--no-cache`, an empty wheel cache) and warm (the same again);
- the image's increment over the base image;
- `bundle serve` from the bundle's runtime env (`bundle env create`, what an image runs) to
  the first 200 from /readyz, and `import modelbundle` there (median of 20);
- `bundle export lambda`: the zip's size, zipped and unzipped, and its cold init (a fresh
  `python3 -I -S` with only the unpacked zip on its path imports the handler module and runs
  its init, which loads the model), median of --init-runs, for the text example always and for
  iris when its bundle can target Lambda's python3.11 (built here, numpy and scipy are usually
  too new for Amazon Linux 2's glibc: the export refuses, and the line says so).

It needs the Docker engine and the base image (scripts/ensure-docker.sh,
scripts/build-base-image.sh). Prints a table; always exits 0: it measures, it does not gate.

    .venv/bin/python bench/lean_bench.py [--examples iris text] [--resolvers uv pip-tools] [--init-runs 5]
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
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "modelbundle-base:bookworm-py3.11"
#: the zip is for Lambda's python3.11; an interpreter of that version runs it (this venv's, isolated)
PYTHON_311 = sys.executable if sys.version_info[:2] == (3, 11) else "python3.11"
EXAMPLES = {
    "iris": ("service.py:IrisClassifier", ("service.py", "train.py")),
    "text": ("service.py:TextSentiment", ("service.py",)),
}
#: cold init of an unpacked Lambda zip, what Lambda does before the first event: importing the
#: handler module verifies the bundle, loads the model and runs setup()
INIT_SCRIPT = """
import sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import modelbundle_handler
print(time.perf_counter() - started)
"""


@dataclass
class Figures:
    example: str

    def add(self, what: str, value: str) -> None:
        print(f"  {self.example:<5} {what:<52} {value}", flush=True)


class Bench:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.counter = 0

    def fresh(self, name: str) -> Path:
        self.counter += 1
        path = self.scratch / f"{self.counter:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def run(self, *args: str | Path, env: dict[str, str], cwd: Path | None = None) -> tuple[float, str, str, int]:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "modelbundle", *map(str, args)], env={**os.environ, **env}, cwd=cwd,
            capture_output=True, text=True,
        )
        return time.perf_counter() - started, result.stdout.strip(), result.stderr.strip(), result.returncode


def caches(root: Path) -> dict[str, str]:
    """Empty uv and pip caches, store and modelbundle cache under ``root``."""
    env = {
        "MODELBUNDLE_HOME": str(root / "home"),
        "MODELBUNDLE_CACHE_DIR": str(root / "cache"),
        "UV_CACHE_DIR": str(root / "uv-cache"),
        "PIP_CACHE_DIR": str(root / "pip-cache"),
    }
    return env


def project(bench: Bench, example: str) -> Path:
    files = EXAMPLES[example][1]
    folder = bench.fresh(f"{example}-project")
    for name in files:
        shutil.copy(REPO / "examples" / example / name, folder / name)
    if (folder / "train.py").is_file():
        subprocess.run([sys.executable, "train.py"], cwd=folder, check=True, capture_output=True)
    return folder


def bench_builds(bench: Bench, example: str, folder: Path, resolvers: list[str], figures: Figures) -> dict[str, str] | None:
    """Cold and warm builds per resolver; the uv build's environment (store, caches) for what follows."""
    target = EXAMPLES[example][0]
    kept = None
    for resolver in resolvers:
        env = caches(bench.fresh(f"{example}-{resolver}"))
        seconds, tag, stderr, code = bench.run("build", target, "--resolver", resolver, "-o", "tag", env=env, cwd=folder)
        if code != 0:
            figures.add(f"build, cold, {resolver}", f"failed: {stderr.splitlines()[-1:]}")
            continue
        figures.add(f"build, cold caches, {resolver}", f"{seconds:7.2f} s  -> {tag}")
        warm_env = {**env, "MODELBUNDLE_HOME": str(bench.fresh(f"{example}-{resolver}-warm-home"))}
        warm, again, _, _ = bench.run("build", target, "--resolver", resolver, "-o", "tag", env=warm_env, cwd=folder)
        figures.add(f"build, warm cache, {resolver} (same version: {again == tag})", f"{warm:7.2f} s")
        if kept is None or resolver == "uv":
            kept = {**env, "TAG": tag}
    return kept


def image_size(reference: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", reference], capture_output=True, text=True)
    return int(out.stdout.strip()) if out.returncode == 0 else 0


def bench_containerize(bench: Bench, example: str, env: dict[str, str], figures: Figures) -> None:
    tag = env["TAG"]
    image = f"modelbundle-bench/{example}:{os.getpid()}"
    # a wheel cache holding only the modelbundle wheel the lock names (built from this checkout, never downloaded)
    cold_cache = bench.fresh(f"{example}-wheels")
    (cold_cache / "wheels").mkdir()
    for wheel in (Path(env["MODELBUNDLE_CACHE_DIR"]) / "wheels").glob("modelbundle-*.whl"):
        shutil.copy(wheel, cold_cache / "wheels")
    cold_env = {**env, "MODELBUNDLE_CACHE_DIR": str(cold_cache)}
    common = ("containerize", tag, "--base-image", BASE_IMAGE, "-t", image, "-q")
    seconds, _, stderr, code = bench.run(*common, "--no-cache", env=cold_env)
    if code != 0:
        figures.add("containerize", f"failed: {stderr.splitlines()[-1:]}")
        return
    figures.add("containerize, cold (empty wheel cache, --no-cache)", f"{seconds:7.2f} s")
    warm, _, _, _ = bench.run(*common, env=cold_env)
    figures.add("containerize, warm (the same again)", f"{warm:7.2f} s")
    increment = image_size(image) - image_size(BASE_IMAGE)
    figures.add("image increment over the base", f"{increment / 1e6:7.1f} MB")
    subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True)


def bench_lambda(bench: Bench, example: str, env: dict[str, str], init_runs: int, figures: Figures) -> None:
    out = bench.fresh(f"{example}-lambda") / "function.zip"
    seconds, _, stderr, code = bench.run("export", "lambda", env["TAG"], "-o", out, "--python", "3.11", "-q", env=env)
    if code != 0:
        figures.add("lambda export for python3.11", "refused: " + (stderr.splitlines() or ["?"])[-1][:90])
        return
    figures.add("lambda export for python3.11", f"{seconds:7.2f} s")
    with zipfile.ZipFile(out) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
        pyc = sum(1 for name in archive.namelist() if name.endswith(".pyc"))
        task = bench.fresh(f"{example}-var-task")
        archive.extractall(task)
    figures.add("lambda zip, zipped / unzipped", f"{out.stat().st_size / 1e6:7.1f} MB / {unzipped / 1e6:.1f} MB ({pyc} .pyc)")
    times = []
    for _ in range(init_runs):
        result = subprocess.run(
            [PYTHON_311, "-I", "-S", "-c", INIT_SCRIPT, str(task)],
            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(task)},
        )
        if result.returncode != 0:
            figures.add("lambda cold init", f"failed: {result.stderr.strip().splitlines()[-1:]}")
            return
        times.append(float(result.stdout.strip().splitlines()[-1]))
    figures.add(f"lambda cold init (median of {init_runs})", f"{statistics.median(times):7.2f} s")


def bench_startup(bench: Bench, example: str, env: dict[str, str], runs: int, figures: Figures) -> None:
    """`bundle serve` from its runtime env (`bundle env create`: what an image runs) to the first 200 from /readyz."""
    venv = bench.fresh(f"{example}-runtime-env") / "venv"
    _, _, stderr, code = bench.run("env", "create", env["TAG"], venv, "-q", env=env)
    if code != 0:
        figures.add("bundle env create", f"failed: {stderr.splitlines()[-1:]}")
        return
    times = []
    for _ in range(runs):
        port = _free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [venv / "bin" / "bundle", "serve", env["TAG"], "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "MODELBUNDLE_HOME": env["MODELBUNDLE_HOME"]},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            while not _ready(port):
                if process.poll() is not None or time.perf_counter() - started > 60:
                    figures.add("bundle serve -> /readyz 200", "failed to start")
                    return
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(40)
    figures.add(f"bundle serve -> /readyz 200, runtime env (median of {runs})", f"{statistics.median(times):7.2f} s")
    imports = []
    for _ in range(20):
        out = subprocess.run(
            [venv / "bin" / "python", "-c", "import time; t = time.perf_counter(); import modelbundle; print(time.perf_counter() - t)"],
            capture_output=True, text=True, check=True,
        )
        imports.append(float(out.stdout))
    figures.add("import modelbundle, runtime env (median of 20)", f"{statistics.median(imports) * 1000:7.1f} ms")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    parser.add_argument("--resolvers", nargs="+", default=["uv", "pip-tools"], choices=["uv", "pip-tools"])
    parser.add_argument("--init-runs", type=int, default=5)
    parser.add_argument("--skip-docker", action="store_true", help="builds and Lambda only")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start {load[0]:.2f}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lean-bench-") as scratch:
        bench = Bench(Path(scratch))
        for example in args.examples:
            figures = Figures(example)
            folder = project(bench, example)
            env = bench_builds(bench, example, folder, args.resolvers, figures)
            if env is None:
                continue
            if not args.skip_docker:
                bench_containerize(bench, example, env, figures)
            bench_startup(bench, example, env, args.init_runs, figures)
            bench_lambda(bench, example, env, args.init_runs, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
