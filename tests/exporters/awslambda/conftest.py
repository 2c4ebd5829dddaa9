"""The iris example, built as a bundle that fits Lambda's python3.11 runtime, once per session.

Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26). The numpy, scipy and
scikit-learn of the test venv ship only manylinux_2_27/2_28 wheels, so a bundle
locked there cannot be exported for python3.11 (the exporter says so; see
test_export.py). A user pins versions that still publish manylinux2014 wheels,
and so does this fixture: it builds iris from a venv holding those versions and
this checkout's modelbundle (on PYTHONPATH, as in a development checkout).

The venv is installed from requirements/lambda-iris.lock (those pins and
modelbundle's dependencies) into the session's cache, and the build uses a private
copy of that cache, so another build of the session cannot swap the modelbundle
wheel the lock names; new locks are copied back for the session's later builds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.cli import SHARED_CACHE
from fixtures.venvs import locked_venv
from modelbundle.bundler import LocalStore, Reporter, StoredBundle
from modelbundle.bundler._lock import ensure_runtime_wheel

REPO = Path(__file__).resolve().parents[3]
IRIS_EXAMPLE = REPO / "examples" / "iris"

PREDICT_SCRIPT = """\
import json, sys
import joblib
from sklearn.datasets import load_iris
rows = load_iris().data
model = joblib.load(sys.argv[1])
print(json.dumps({"rows": rows.tolist(), "predictions": model.predict(rows).tolist()}))
"""


@dataclass(frozen=True)
class LambdaIris:
    """The iris bundle, built for Lambda python3.11, in a store of its own."""

    home: Path
    cache: Path
    tag: str
    venv_python: Path
    rows: list[list[float]]
    #: what the model itself answers for ``rows``, computed in the build environment
    predictions: list[int]

    @property
    def bundle(self) -> StoredBundle:
        return LocalStore(self.home).get(self.tag)

    def env(self) -> dict[str, str]:
        return {**os.environ, "MODELBUNDLE_HOME": str(self.home), "MODELBUNDLE_CACHE_DIR": str(self.cache)}


def _run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def lambda_iris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaIris]:
    root = tmp_path_factory.mktemp("lambda-iris")
    cache = root / "cache"
    (cache / "wheels").mkdir(parents=True)
    (cache / "locks").mkdir()
    for part in ("wheels", "locks"):  # hard links: cheap, and the shared files are replaced, never edited
        source = SHARED_CACHE / part
        for path in source.glob("*") if source.is_dir() else []:
            if path.is_file():
                try:
                    os.link(path, cache / part / path.name)
                except OSError:
                    shutil.copy2(path, cache / part / path.name)
    ensure_runtime_wheel(cache / "wheels", Reporter(quiet=True))
    # the pins above and modelbundle's dependencies, not modelbundle itself (it is on PYTHONPATH)
    python = locked_venv("lambda-iris.lock", SHARED_CACHE / "venvs")

    project = root / "iris"
    project.mkdir()
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_EXAMPLE / name, project / name)
    home = root / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MODELBUNDLE_HOME": str(home), "MODELBUNDLE_CACHE_DIR": str(cache)}
    _run([python, "train.py"], cwd=project, env=env)
    tag = _run([python, "-m", "modelbundle", "build", "service.py:IrisClassifier", "-o", "tag"], cwd=project, env=env).stdout.strip()
    expected = json.loads(_run([python, "-c", PREDICT_SCRIPT, project / "model.joblib"], env=env).stdout)
    (SHARED_CACHE / "locks").mkdir(parents=True, exist_ok=True)  # a fresh session's cache may have none yet
    for lock in (cache / "locks").glob("*.lock"):  # share new locks: the session's later builds skip pip-compile
        shared = SHARED_CACHE / "locks" / lock.name
        if not shared.exists():
            partial = shared.with_name(f".{lock.name}.{os.getpid()}.partial")
            shutil.copyfile(lock, partial)
            partial.replace(shared)
    yield LambdaIris(home, cache, tag.splitlines()[-1], python, expected["rows"], expected["predictions"])
