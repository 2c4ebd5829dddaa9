"""Lambda cold init of the iris zip, with and without the bytecode the exporter ships, and the zip's sizes.

Builds the iris example as the Lambda tests do (tests/exporters/awslambda/conftest.py):
from a venv installed from requirements/lambda-iris.lock (versions with wheels for
python3.11 on Amazon Linux 2) and this checkout's modelbundle on PYTHONPATH, then
exports it with `export_lambda` (what `bundle export lambda` runs). Three variants:

- "as exported": the zip as `bundle export lambda` writes it. When the bytecode of every
  module does not fit in Lambda's 250 MiB, the exporter leaves out that of the modules a
  cold start does not import first;
- "all bytecode": exported with no size limit, so every module has its pyc (only shown
  when it differs; above the limit, Lambda would refuse it);
- "no bytecode": the exported zip without any __pycache__, as every zip was before.

Each variant is unpacked into /var/task of its own container of the local base image
(--network none). A cold init is what Lambda's init phase does: a fresh `python3 -I -S`,
as a user that cannot write /var/task, imports modelbundle_handler (verify the bundle,
import the service, load the model, setup()). The variants take turns, so all see the
same load. Without Docker (or without the base image, which scripts/build-base-image.sh
makes) the same runs happen on this host with `python3 -I -S -B`.

Prints the sizes, the median/min/max init per variant, how many modules each compiled
from source, and the issue's floor (at most 2 s as exported). Always exits 0.

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
LIMIT_MIB = 250
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
#: unpacks the zip as Lambda does, keeping each entry's mode bits
UNPACK = """\
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        path = archive.extract(info, sys.argv[2])
        os.chmod(path, (info.external_attr >> 16) & 0o7777)
"""


def run(command: Sequence[str | Path], **kwargs: object) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=1800, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout  # type: ignore[no-any-return]


def build_iris(cache: Path) -> str:
    """The iris bundle for python3.11 in the bench's own store (``cache``/home); its tag."""
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
    return tag.strip().splitlines()[-1]


def strip_bytecode(zip_path: Path, output: Path) -> Path:
    """``zip_path`` without its __pycache__ entries."""
    with zipfile.ZipFile(zip_path) as archive, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            if "__pycache__/" not in info.filename:
                out.writestr(info, archive.read(info))
    return output


def sizes(zip_path: Path) -> tuple[int, int, int, int]:
    """(zipped, unzipped, files, pyc files)."""
    with zipfile.ZipFile(zip_path) as archive:
        files = [i for i in archive.infolist() if not i.is_dir()]
    pycs = len([i for i in files if i.filename.endswith(".pyc")])
    return zip_path.stat().st_size, sum(i.file_size for i in files), len(files), pycs


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode == 0


def in_containers(zips: dict[str, Path]) -> tuple[dict[str, Callable[[], dict[str, float]]], Callable[[], None], str]:
    """One container per variant, its zip unpacked in /var/task; a cold init in each, and a cleanup."""
    names = {variant: f"lambda-bench-{i}-{os.getpid()}" for i, variant in enumerate(zips)}

    def cleanup() -> None:
        for name in names.values():
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)

    try:
        for variant, name in names.items():
            run(["docker", "run", "-d", "--rm", "--network", "none", "--name", name, BASE_IMAGE, "sleep", "infinity"])
            run(["docker", "cp", zips[variant], f"{name}:/tmp/function.zip"])
            run(["docker", "exec", name, "python3", "-I", "-c", UNPACK, "/tmp/function.zip", TASK_ROOT])
        python = run(["docker", "exec", next(iter(names.values())), "python3", "-V"]).strip()
    except BaseException:
        cleanup()
        raise

    def init(name: str) -> Callable[[], dict[str, float]]:
        command = ["docker", "exec", "--user", FOREIGN_USER, "-w", "/tmp", name, "python3", "-I", "-S", "-c", INIT, TASK_ROOT]
        return lambda: json.loads(run(command).strip().splitlines()[-1])

    where = f"containers of {BASE_IMAGE} ({python}, --network none, user {FOREIGN_USER}, {TASK_ROOT} not writable)"
    return {variant: init(name) for variant, name in names.items()}, cleanup, where


def on_host(zips: dict[str, Path], scratch: Path) -> tuple[dict[str, Callable[[], dict[str, float]]], Callable[[], None], str]:
    """The same on this host: `python3 -I -S -B`, so a variant without bytecode never writes any."""
    python = shutil.which("python3") or sys.executable
    inits: dict[str, Callable[[], dict[str, float]]] = {}
    for i, (variant, zip_path) in enumerate(zips.items()):
        root = scratch / f"task-{i}"
        run([python, "-I", "-c", UNPACK, zip_path, root])
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
    tag = build_iris(args.cache_dir)
    from modelbundle.bundler import LocalStore
    from modelbundle.exporters.awslambda import LambdaLimits, export_lambda

    bundle = LocalStore(args.cache_dir / "home").get(tag)
    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as work:
        scratch = Path(work)
        print(f"exporting {tag} (twice: as `bundle export lambda` does, and with no size limit)...", flush=True)
        exported = export_lambda(bundle, scratch / "exported.zip", cache_dir=args.cache_dir / "cache").path
        unlimited = export_lambda(
            bundle, scratch / "all.zip", cache_dir=args.cache_dir / "cache", limits=LambdaLimits(unzipped=2**40)
        ).path
        zips = {"as exported": exported}
        if unlimited.read_bytes() != exported.read_bytes():
            zips["all bytecode"] = unlimited
        zips["no bytecode"] = strip_bytecode(exported, scratch / "none.zip")
        measured = {variant: sizes(path) for variant, path in zips.items()}
        inits, cleanup, where = on_host(zips, scratch) if args.host or not docker_ready() else in_containers(zips)
        results: dict[str, list[dict[str, float]]] = {variant: [] for variant in inits}
        try:
            for _ in range(args.runs):  # the variants take turns, so a busier moment hurts all alike
                for variant, init in inits.items():
                    results[variant].append(init())
        finally:
            cleanup()

    print(f"\nlambda zip of {tag} (python3.11 x86_64); Lambda's limit: {LIMIT_MIB} MiB unzipped")
    print(f"{'':<14} {'zipped':>10} {'unzipped':>10} {'files':>7} {'pyc':>6}")
    for variant, (zipped, unzipped, files, pycs) in measured.items():
        over = "  above the limit" if unzipped > LIMIT_MIB * MIB else ""
        print(f"{variant:<14} {zipped / MIB:>6.1f} MiB {unzipped / MIB:>6.1f} MiB {files:>7} {pycs:>6}{over}")
    print(f"\ncold init (import modelbundle_handler: verify, load the model, setup), {args.runs} runs each, in {where}")
    print(f"{'':<14} {'median s':>9} {'min s':>7} {'max s':>7} {'modules compiled from source':>29}")
    medians = {}
    for variant, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        medians[variant] = statistics.median(seconds)
        compiled = statistics.median(r["compiled"] for r in runs)
        print(f"{variant:<14} {medians[variant]:>9.3f} {min(seconds):>7.3f} {max(seconds):>7.3f} {compiled:>29.0f}")
    for variant in medians:
        if variant != "no bytecode":
            print(f"no bytecode / {variant}: {medians['no bytecode'] / medians[variant]:.1f}x")
    verdict = "PASS" if medians["as exported"] <= TARGET_SECONDS else "FAIL"
    print(f"floor: cold init as exported at most {TARGET_SECONDS:.1f} s: {verdict} ({medians['as exported']:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
