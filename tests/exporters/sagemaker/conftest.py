"""Fixtures for the SageMaker image tests: two iris-pair bundles (same code, models with other labels), one image.

The image is built once per session with the real ``bundle containerize --target
sagemaker`` on the locally built base image, like the docker target's tests.
Bundle ``base`` answers class ids 0, 1, 2; bundle ``shifted`` was trained on
labels 10, 11, 12, so an answer shows which artifacts a container loaded.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli, ok
from fixtures.docker import ImageSession, docker_client, ensure_base_image
from fixtures.session import KEEP, PREFIX
from modelbundle.bundler import StoredBundle

SERVICE = Path(__file__).parent / "iris_pair" / "service.py"
TRAIN = """\
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

data = load_iris()
joblib.dump(LogisticRegression(max_iter=1000).fit(data.data, data.target + int(sys.argv[1])), "model.joblib")
"""
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
CLASSES = [0, 2, 1]


@dataclass(frozen=True)
class SageMakerImage:
    tag: str
    bundle: StoredBundle
    build_seconds: float


@pytest.fixture(scope="session")
def sm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of these tests' bundles (no engine needed to build them)."""
    return tmp_path_factory.mktemp("sagemaker-home")


@pytest.fixture(scope="session")
def sm_session(sm_home: Path) -> Iterator[ImageSession]:
    engine = docker_client()
    state = ImageSession(engine, ensure_base_image(engine), sm_home, [])
    yield state
    for tag in [] if KEEP else state.tags:
        with contextlib.suppress(Exception):
            engine.images.remove(tag)


def _project(root: Path, offset: int) -> Path:
    root.mkdir(parents=True)
    shutil.copy(SERVICE, root / "service.py")
    (root / "train.py").write_text(TRAIN)
    subprocess.run([sys.executable, "train.py", str(offset)], cwd=root, check=True, capture_output=True)
    return root


def _build(home: Path, project: Path) -> StoredBundle:
    return build_in_process(f"{project}/service.py:IrisPair", project, home)


@pytest.fixture(scope="session")
def base_bundle(sm_home: Path, tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    return _build(sm_home, _project(tmp_path_factory.mktemp("iris-pair") / "base", 0))


@pytest.fixture(scope="session")
def shifted_bundle(sm_home: Path, tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    return _build(sm_home, _project(tmp_path_factory.mktemp("iris-pair") / "shifted", 10))


@pytest.fixture(scope="session")
def sagemaker_image(sm_session: ImageSession, base_bundle: StoredBundle) -> SageMakerImage:
    tag = f"{PREFIX}/iris-pair:{base_bundle.manifest.version}-sagemaker"
    started = time.perf_counter()
    ok(sm_session.containerize(base_bundle.tag, "--target", "sagemaker", tag=tag))
    seconds = time.perf_counter() - started
    print(f"\nbuilt {tag} (--target sagemaker) in {seconds:.1f} s")
    return SageMakerImage(tag, base_bundle, seconds)


@pytest.fixture(scope="session")
def shifted_model_dir(sm_home: Path, shifted_bundle: StoredBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shifted bundle's model.tar.gz (written by the real CLI), unpacked as SageMaker does into /opt/ml/model."""
    out = tmp_path_factory.mktemp("model-data")
    ok(cli("export", "sagemaker", shifted_bundle.tag, "-o", str(out), home=sm_home))
    model_dir = out / "model"
    with tarfile.open(out / "model.tar.gz") as tar:
        tar.extractall(model_dir, filter="data")
    model_dir.chmod(0o755)
    return model_dir
