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

from exporters.docker.conftest import CACHE_DIR, IMAGE_PREFIX, Session, bundle, ok
from fixtures.docker import docker_client, ensure_base_image
from modelbundle.bundler import LocalStore, StoredBundle, build, resolve_build_options

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
def sm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    engine = docker_client()
    state = Session(engine, ensure_base_image(engine), tmp_path_factory.mktemp("sagemaker-home"), [])
    yield state
    for tag in state.tags:
        with contextlib.suppress(Exception):
            engine.images.remove(tag)


def _project(root: Path, offset: int) -> Path:
    root.mkdir(parents=True)
    shutil.copy(SERVICE, root / "service.py")
    (root / "train.py").write_text(TRAIN)
    subprocess.run([sys.executable, "train.py", str(offset)], cwd=root, check=True, capture_output=True)
    return root


def _build(session: Session, project: Path) -> StoredBundle:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_CACHE_DIR", str(CACHE_DIR))
        options = resolve_build_options({"service": f"{project}/service.py:IrisPair", "quiet": True}, project)
        return build(options, LocalStore(session.home))


@pytest.fixture(scope="session")
def base_bundle(sm_session: Session, tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    return _build(sm_session, _project(tmp_path_factory.mktemp("iris-pair") / "base", 0))


@pytest.fixture(scope="session")
def shifted_bundle(sm_session: Session, tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    return _build(sm_session, _project(tmp_path_factory.mktemp("iris-pair") / "shifted", 10))


@pytest.fixture(scope="session")
def sagemaker_image(sm_session: Session, base_bundle: StoredBundle) -> SageMakerImage:
    tag = f"{IMAGE_PREFIX}/iris-pair:{base_bundle.manifest.version}-sagemaker"
    started = time.perf_counter()
    ok(sm_session.containerize(base_bundle.tag, "--target", "sagemaker", tag=tag))
    seconds = time.perf_counter() - started
    print(f"\nbuilt {tag} (--target sagemaker) in {seconds:.1f} s")
    return SageMakerImage(tag, base_bundle, seconds)


@pytest.fixture(scope="session")
def shifted_model_dir(sm_session: Session, shifted_bundle: StoredBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shifted bundle's model.tar.gz, unpacked as SageMaker does into /opt/ml/model."""
    out = tmp_path_factory.mktemp("model-data")
    ok(bundle("export", "sagemaker", shifted_bundle.tag, "-o", str(out), home=sm_session.home))
    model_dir = out / "model"
    with tarfile.open(out / "model.tar.gz") as tar:
        tar.extractall(model_dir, filter="data")
    model_dir.chmod(0o755)
    return model_dir
