"""An MLflow model served two ways, in one run: `bundle serve` of its bundle against `mlflow models serve`.

The model is a scikit-learn logistic regression on iris, saved by `mlflow.sklearn.save_model`
(with this venv's mlflow-skinny) with a tensor signature and an input example. Then:

- `bundle build --mlflow MODEL_DIR` into a fresh MODELBUNDLE_HOME, and `bundle env create` of
  it (the runtime environment an image runs: no mlflow in it);
- a throwaway venv under the temp dir with the full `mlflow` (pip, from PyPI, at the version
  that saved the model) and the model's scikit-learn;
- process start to first answer, alternating, --runs times each: `bundle serve TAG` from the
  runtime env until POST /predict answers 200, and `mlflow models serve -m MODEL_DIR
  --env-manager local` from the mlflow venv until POST /invocations answers 200 (same rows);
- sizes: each environment's site-packages on disk, and, with --image, our image's increment
  over the base image (`bundle containerize`). `mlflow models build-docker` needs a python
  base image from Docker Hub, which cannot be pulled here: its venv's size is what stands in.

Prints the figures; always exits 0: it measures, it does not gate.

    .venv-test/bin/python bench/mlflow_bench.py [--runs 5] [--image]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "modelbundle-base:bookworm-py3.11"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
START_TIMEOUT = 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="store_true", help="also containerize the bundle and measure the image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as scratch:
        run(Path(scratch), args.runs, args.image)


def run(scratch: Path, runs: int, image: bool) -> None:
    import mlflow

    sys.path.insert(0, str(REPO / "tests"))
    from fixtures.mlflow_models import save_tensor_model

    model = save_tensor_model(scratch / "iris_model")
    env = {**os.environ, "MODELBUNDLE_HOME": str(scratch / "home"), "MODELBUNDLE_CACHE_DIR": str(scratch / "cache")}
    bundle = [sys.executable, "-m", "modelbundle"]
    tag = _run([*bundle, "build", "--mlflow", str(model), "-o", "tag"], env).strip()
    runtime = scratch / "runtime-env"
    _run([*bundle, "env", "create", tag, str(runtime)], env)
    print(f"model: {model.name}, saved by mlflow {mlflow.__version__}; bundle {tag}")

    mlflow_venv = scratch / "mlflow-venv"
    sklearn_pin = next(ln for ln in (model / "requirements.txt").read_text().splitlines() if ln.startswith("scikit-learn"))
    started = time.perf_counter()
    # the version that saved the model, or the newest of its major version whose dependencies
    # the index has (pip backtracks; a release's mlflow-tracing can lag behind on a mirror)
    major = mlflow.__version__.split(".")[0]
    installed = _make_mlflow_venv(mlflow_venv, [f"mlflow>={major},<={mlflow.__version__}", sklearn_pin])
    install_s = time.perf_counter() - started

    ours, theirs = [], []
    for _ in range(runs):
        ours.append(_first_answer([str(runtime / "bin" / "bundle"), "serve", tag, "--no-access-log"], env, "/predict", {"inputs": ROWS}))
        if installed:
            theirs.append(_first_answer(
                [str(mlflow_venv / "bin" / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local", "--host", "127.0.0.1"],
                # mlflow starts `uvicorn` by name: its venv's bin first on the PATH, as if activated
                {**env, "PATH": f"{mlflow_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}, "/invocations", {"inputs": ROWS},
            ))
    print(f"\nprocess start to first answer, median of {runs} (min-max):")
    print(f"  bundle serve (runtime env)              {_fmt(ours)}")
    if installed:
        print(f"  mlflow models serve --env-manager local {_fmt(theirs)}")
    else:
        print("  mlflow models serve: the full mlflow did not install here (see above)")

    print("\nsizes on disk (site-packages):")
    print(f"  bundle's runtime env                    {_mib(_site_packages(runtime)):8.1f} MiB")
    if installed:
        version = _run([str(mlflow_venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"], env).strip()
        print(f"  full mlflow {version} venv (installed in {install_s:.0f} s) {_mib(_site_packages(mlflow_venv)):8.1f} MiB")
    if image:
        image_tag = f"mlflow-bench:{tag.split(':')[1]}"
        _run([*bundle, "containerize", tag, "--base-image", BASE_IMAGE, "-t", image_tag], env)
        increment = _image_size(image_tag) - _image_size(BASE_IMAGE)
        print(f"  our image over the base                 {_mib(increment):8.1f} MiB")
        subprocess.run(["docker", "rmi", image_tag], capture_output=True)
    print("  mlflow models build-docker: not built here (its python base image comes from Docker Hub)")


def _make_mlflow_venv(path: Path, requirements: list[str]) -> bool:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    result = subprocess.run(
        [str(path / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--only-binary", ":all:", *requirements],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        errors = [ln for ln in result.stderr.splitlines() if not ln.startswith("WARNING: Location")]
        print(f"pip install {' '.join(requirements)} failed:\n" + "\n".join(errors[-10:]))
    return result.returncode == 0


def _first_answer(command: list[str], env: dict[str, str], path: str, body: object) -> float:
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    data = json.dumps(body).encode()
    try:
        while time.perf_counter() - started < START_TIMEOUT:
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited {proc.returncode}:\n{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise SystemExit(f"{command[0]} did not answer within {START_TIMEOUT} s")
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited on its own
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _site_packages(venv: Path) -> int:
    return sum(f.stat().st_size for f in venv.glob("lib/python3*/site-packages/**/*") if f.is_file() and not f.is_symlink())


def _image_size(tag: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def _mib(size: int) -> float:
    return size / 2**20


if __name__ == "__main__":
    main()
