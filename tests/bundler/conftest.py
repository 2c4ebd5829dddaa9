"""Fixtures for the bundler tests: one shared lock/wheel cache, a fresh store per test, bundles built once.

Locking runs the real uv (a few seconds per set of requirements; the real
pip-compile, 1-2 minutes, where a test asks for it) against the real index, so
every test here shares the session's cache directory (fixtures/session.py), and
the suite keeps to two sets of requirements:

- iris: joblib, modelbundle, numpy, scikit-learn (the example, and projects that copy it);
- plain: modelbundle alone (the pickle service, the ignore/offline projects).

The two example bundles are built once per session, at the same time, so a
cold run pays for one lock rather than two in a row.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.session import CACHE
from modelbundle.bundler import Reporter
from modelbundle.bundler._lock import ensure_runtime_wheel

from ._helpers import IRIS_EXAMPLE, PLAIN_SERVICE, Built, Prebuilt, ok

AFFINE_SERVICE = '''\
from modelbundle import Artifact, Service, api


class Affine(Service):
    """a * x + b, with the model object bound by pack()."""

    name = "affine"
    model = Artifact("pickle")

    @api
    def predict(self, x: list[float]) -> list[float]:
        return self.model.transform(x)
'''

#: run as a script: the model's class lives in __main__, which only cloudpickle can save
PACK_AFFINE = '''\
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from affine_service import Affine


class Line:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def transform(self, xs):
        return [self.a * x + self.b for x in xs]


if __name__ == "__main__":
    print(Affine.pack(model=Line(3.0, 1.0)).save(name="affine", labels={"origin": "script"}))
'''


@pytest.fixture(scope="package", autouse=True)
def shared_cache() -> Iterator[Path]:
    """$MODELBUNDLE_CACHE_DIR for every build of the package (subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(CACHE))
        yield CACHE


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty store of this test's own (nothing here ever touches ~/.modelbundle)."""
    path = tmp_path / "home"
    monkeypatch.setenv("MODELBUNDLE_HOME", str(path))
    return path


@pytest.fixture(scope="package")
def prebuilt(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Prebuilt:
    """The iris example (``bundle build``) and the pickle service (``pack().save()``), built at the same time.

    Tests that build a project with the same requirements ask for this first,
    so that their lock is warm.
    """
    root = tmp_path_factory.mktemp("prebuilt")
    iris_project, affine_project = root / "iris", root / "affine"
    iris_project.mkdir()
    for name in ("service.py", "train.py"):
        shutil.copyfile(IRIS_EXAMPLE / name, iris_project / name)
    ok(subprocess.run([sys.executable, "train.py"], cwd=iris_project, capture_output=True, text=True))
    assert (iris_project / "model.joblib").is_file()
    affine_project.mkdir()
    (affine_project / "affine_service.py").write_text(AFFINE_SERVICE)
    (affine_project / "pack_affine.py").write_text(PACK_AFFINE)

    # the wheel of this checkout goes into the cache before two builds would race to make it
    (shared_cache / "wheels").mkdir(parents=True, exist_ok=True)
    ensure_runtime_wheel(shared_cache / "wheels", Reporter(quiet=True))
    iris_home, affine_home = root / "iris-home", root / "affine-home"
    commands = {
        "iris": ([sys.executable, "-m", "modelbundle", "build", "service.py:IrisClassifier", "-o", "tag"], iris_project, iris_home),
        "affine": ([sys.executable, "pack_affine.py"], affine_project, affine_home),
    }
    running = {}
    for key, (command, cwd, home) in commands.items():
        # output to files: two pipes read one after the other could fill up and stall a build
        with open(root / f"{key}.out", "w") as out, open(root / f"{key}.err", "w") as err:
            env = {**os.environ, "MODELBUNDLE_HOME": str(home)}
            running[key] = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
    tags = {}
    try:
        for key, proc in running.items():
            code = proc.wait(900)
            stdout, stderr = (root / f"{key}.out").read_text(), (root / f"{key}.err").read_text()
            assert code == 0, f"building {key} failed ({code}):\n{stdout}\n{stderr}"
            tags[key] = stdout.strip().splitlines()[-1]
    finally:
        for proc in running.values():  # the other build, when one failed or timed out
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Prebuilt(
        iris=Built(iris_home, iris_project, tags["iris"]),
        affine=Built(affine_home, affine_project, tags["affine"]),
    )


@pytest.fixture
def iris(prebuilt: Prebuilt) -> Built:
    """The iris example, built once; read-only (copy it with ``iris_copy`` to change it)."""
    return prebuilt.iris


@pytest.fixture
def affine(prebuilt: Prebuilt) -> Built:
    return prebuilt.affine


@pytest.fixture
def iris_copy(iris: Built, home: Path) -> Built:
    """The iris bundle copied into this test's own store, to delete or tamper with."""
    shutil.copytree(iris.path, home / "bundles" / "iris" / iris.version)
    return Built(home, iris.project, iris.tag)


@pytest.fixture
def iris_project(iris: Built, tmp_path: Path) -> Path:
    """A copy of the trained iris project (service.py, model.joblib) to edit."""
    project = tmp_path / "iris-project"
    project.mkdir()
    for name in ("service.py", "model.joblib"):
        shutil.copyfile(iris.project / name, project / name)
    return project


@pytest.fixture
def plain_project(tmp_path: Path) -> Path:
    """A project whose service needs modelbundle alone."""
    project = tmp_path / "plain"
    project.mkdir()
    (project / "plain.py").write_text(PLAIN_SERVICE)
    return project
