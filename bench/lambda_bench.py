"""Lambda cold init of the iris zip, with and without the bytecode the exporter ships, and the zip's sizes.

Builds the iris example as the Lambda tests do (tests/exporters/awslambda/conftest.py):
from a venv installed from requirements/lambda-iris.lock (versions with wheels for
python3.11 on Amazon Linux 2) and this checkout's modelbundle on PYTHONPATH, then runs
`bundle export lambda` on it. The zip is unpacked into /var/task of two containers of the
local base image (--network none): one as exported, one with every __pycache__ removed,
which is what every zip held before bytecode was shipped. A cold init is what Lambda's
init phase does: a fresh `python3 -I -S`, as a user that cannot write /var/task, imports
modelbundle_handler (verify the bundle, import the service, load the model, setup()).
The two containers take turns, so both see the same load. Without Docker (or without
the base image, which scripts/build-base-image.sh makes) the same runs happen on this
host with `python3 -I -S -B` and only the unpacked folder on sys.path.

Prints the sizes, the median/min/max init per variant, how many modules each compiled
from source, and the issue's floor (at most 2 s with bytecode). Always exits 0.

    .venv/bin/python bench/lambda_bench.py [--runs 5] [--cache-dir /tmp/modelbundle-lambda-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
IRIS_DIR = REPO_ROOT / "examples" / "iris"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "modelbundle-lambda-bench"
BASE_IMAGE = "modelbundle-base:bookworm-py3.11"
TASK_ROOT = "/var/task"
#: a user that owns none of /var/task, like Lambda's
FOREIGN_USER = "993:990"
TARGET_SECONDS = 2.0
MIB = 1024 * 1024

#: one cold init: the seconds `import modelbundle_handler` takes, and the modules compiled from source meanwhile
INIT = """\
import importlib.machinery, json, sys, time
root = sys.argv[1]
sys.path[:] = [root] + [p for p in sys.path if p and "-packages" not in p]
compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _recording(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _recording
started = time.perf_counter()
import modelbundle_handler
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "compiled": len([p for p in compiled if p.startswith(root)])}))
"""
#: unpacks the zip as Lambda does, keeping each entry's mode bits; with "strip", without any __pycache__
UNPACK = """\
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        if sys.argv[3] == "strip" and "__pycache__/" in info.filename:
            continue
        path = archive.extract(info, sys.argv[2])
        os.chmod(path, (info.external_attr >> 16) & 0o7777)
"""


def run(command: Sequence[str | Path], **kwargs: object) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=1800, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout  # type: ignore[no-any-return]


def build_iris(cache: Path) -> tuple[str, dict[str, str]]:
    """The iris bundle for python3.11 in the bench's own store; its tag, and the environment naming that store."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from fixtures.venvs import locked_venv  # type: ignore[import-not-found]  # tests/ is no package mypy sees

    python = locked_venv("lambda-iris.lock", cache / "venvs")
    project = cache / "iris"
    project.mkdir(parents=True, exist_ok=True)
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_DIR / name, project / name)
    env = {
        **os.environ, "PYTHONPATH": str(REPO_ROOT / "src"),
        "MODELBUNDLE_HOME": str(cache / "home"), "MODELBUNDLE_CACHE_DIR": str(cache / "cache"),
    }  # fmt: skip
    if not (project / "model.joblib").is_file():  # a model trained once: the bundle's version stays the same
        run([python, "train.py"], cwd=project, env=env)
    tag = run([python, "-m", "modelbundle", "build", "service.py:IrisClassifier", "-o", "tag"], cwd=project, env=env)
    return tag.strip().splitlines()[-1], env


def sizes(zip_path: Path) -> dict[str, tuple[int, int, int]]:
    """Per variant: (zipped, unzipped, files); the variant without bytecode is the same zip minus its pyc."""
    stripped = zip_path.with_name("without-bytecode.zip")
    with zipfile.ZipFile(zip_path) as archive, zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as out:
        infos = archive.infolist()
        for info in infos:
            if "__pycache__/" not in info.filename:
                out.writestr(info, archive.read(info))
    kept = [i for i in infos if "__pycache__/" not in i.filename]
    files = [i for i in infos if not i.is_dir()]
    return {
        "with bytecode": (zip_path.stat().st_size, sum(i.file_size for i in infos), len(files)),
        "without bytecode": (stripped.stat().st_size, sum(i.file_size for i in kept), len([i for i in kept if not i.is_dir()])),
    }


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode == 0


def in_containers(zip_path: Path) -> tuple[dict[str, Callable[[], dict[str, float]]], Callable[[], None], str]:
    """One container per variant, /var/task unpacked; a cold init in each, and a cleanup."""
    names = {"with bytecode": f"lambda-bench-pyc-{os.getpid()}", "without bytecode": f"lambda-bench-nopyc-{os.getpid()}"}
    for variant, name in names.items():
        run(["docker", "run", "-d", "--rm", "--network", "none", "--name", name, BASE_IMAGE, "sleep", "infinity"])
        run(["docker", "cp", zip_path, f"{name}:/tmp/function.zip"])
        strip = "strip" if variant == "without bytecode" else "keep"
        run(["docker", "exec", name, "python3", "-I", "-c", UNPACK, "/tmp/function.zip", TASK_ROOT, strip])

    def init(name: str) -> Callable[[], dict[str, float]]:
        command = ["docker", "exec", "--user", FOREIGN_USER, "-w", "/tmp", name, "python3", "-I", "-S", "-c", INIT, TASK_ROOT]
        return lambda: json.loads(run(command).strip().splitlines()[-1])

    def cleanup() -> None:
        for name in names.values():
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)

    python = run(["docker", "exec", names["with bytecode"], "python3", "-V"]).strip()
    where = f"containers of {BASE_IMAGE} ({python}, --network none, user {FOREIGN_USER}, {TASK_ROOT} not writable)"
    return {variant: init(name) for variant, name in names.items()}, cleanup, where


def on_host(zip_path: Path, scratch: Path) -> tuple[dict[str, Callable[[], dict[str, float]]], Callable[[], None], str]:
    """The same on this host: `python3 -I -S -B`, so the variant without bytecode never writes any."""
    python = shutil.which("python3") or sys.executable
    inits: dict[str, Callable[[], dict[str, float]]] = {}
    for variant, strip in (("with bytecode", "keep"), ("without bytecode", "strip")):
        root = scratch / variant.replace(" ", "-")
        run([python, "-I", "-c", UNPACK, zip_path, root, strip])
        command = [python, "-I", "-S", "-B", "-c", INIT, str(root)]
        inits[variant] = lambda command=command: json.loads(run(command, cwd=scratch).strip().splitlines()[-1])  # type: ignore[misc]
    return inits, lambda: None, f"this host ({run([python, '-V']).strip()}, -I -S -B)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold inits of each variant [5]")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"venv, store and wheel cache, kept between runs [{DEFAULT_CACHE}]")
    parser.add_argument("--host", action="store_true", help="run on this host even when Docker and the base image are there")
    args = parser.parse_args(argv)

    print("building the iris bundle for python3.11 (the first run installs a venv: a few minutes)...", flush=True)
    tag, env = build_iris(args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as scratch:
        zip_path = Path(scratch) / "iris.zip"
        run([sys.executable, "-m", "modelbundle", "export", "lambda", tag, "-o", zip_path, "--quiet"], env=env)
        measured = sizes(zip_path)
        inits, cleanup, where = (
            on_host(zip_path, Path(scratch)) if args.host or not docker_ready() else in_containers(zip_path)
        )
        results: dict[str, list[dict[str, float]]] = {variant: [] for variant in inits}
        try:
            for _ in range(args.runs):  # the variants take turns, so a busier moment hurts both alike
                for variant, init in inits.items():
                    results[variant].append(init())
        finally:
            cleanup()

    print(f"\nlambda zip of {tag} (python3.11 x86_64)")
    print(f"{'':<18} {'zipped':>10} {'unzipped':>10} {'files':>7}")
    for variant, (zipped, unzipped, files) in measured.items():
        print(f"{variant:<18} {zipped / MIB:>6.1f} MiB {unzipped / MIB:>6.1f} MiB {files:>7}")
    print(f"\ncold init (import modelbundle_handler: verify, load the model, setup), {args.runs} runs each, in {where}")
    print(f"{'':<18} {'median s':>9} {'min s':>7} {'max s':>7} {'compiled from source':>21}")
    medians = {}
    for variant, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        medians[variant] = statistics.median(seconds)
        compiled = statistics.median(r["compiled"] for r in runs)
        print(f"{variant:<18} {medians[variant]:>9.3f} {min(seconds):>7.3f} {max(seconds):>7.3f} {compiled:>21.0f}")
    ratio = medians["without bytecode"] / medians["with bytecode"]
    print(f"without / with bytecode: {ratio:.1f}x")
    verdict = "PASS" if medians["with bytecode"] <= TARGET_SECONDS else "FAIL"
    print(f"floor: cold init with bytecode at most {TARGET_SECONDS:.1f} s: {verdict} ({medians['with bytecode']:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
