"""Images every exporter's tests share, built once per session: the engine session and the iris example's image.

Images are built with the real ``bundle containerize`` command on the base
image made by ``scripts/build-base-image.sh``; building is slow, so the docker
target's tests and the Kubernetes image checks use the same ones.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import ok
from fixtures.docker import REPO, Image, ImageSession, docker_client, ensure_base_image
from fixtures.session import KEEP, PREFIX
from modelbundle.bundler import StoredBundle


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageSession]:
    engine = docker_client()
    state = ImageSession(engine, ensure_base_image(engine), tmp_path_factory.mktemp("containerize-home"), [])
    yield state
    for tag in [] if KEEP else state.tags:  # untag what the session made; the layer cache stays for the next run
        with contextlib.suppress(Exception):
            engine.images.remove(tag)


@pytest.fixture(scope="session")
def iris_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained copy of the iris example."""
    root = tmp_path_factory.mktemp("iris-example")
    for name in ("service.py", "train.py"):
        shutil.copy(REPO / "examples" / "iris" / name, root / name)
    subprocess.run([sys.executable, "train.py"], cwd=root, check=True, capture_output=True)
    return root


@pytest.fixture(scope="session")
def iris_bundle(session: ImageSession, iris_project: Path) -> StoredBundle:
    return build_in_process(f"{iris_project}/service.py:IrisClassifier", iris_project, session.home)


@pytest.fixture(scope="session")
def iris_image(session: ImageSession, iris_bundle: StoredBundle) -> Image:
    """Built with --keep-builder: the classic build of its --context-only folder then finds the install in the cache."""
    tag = f"{PREFIX}/iris:{iris_bundle.manifest.version}"
    ok(session.containerize(iris_bundle.tag, "--keep-builder", tag=tag))
    session.tags.append(f"{tag}-builder")
    return session.image(tag, iris_bundle)


@pytest.fixture(scope="session")
def pipeline_bundle(session: ImageSession) -> StoredBundle:
    """examples/pipeline: a composed bundle (three services, one the batchable model)."""
    return build_in_process(f"{REPO}/examples/pipeline/service.py:Pipeline", REPO / "examples" / "pipeline", session.home)


@pytest.fixture(scope="session")
def pipeline_image(session: ImageSession, pipeline_bundle: StoredBundle) -> Image:
    tag = f"{PREFIX}/pipeline:{pipeline_bundle.manifest.version}"
    ok(session.containerize(pipeline_bundle.tag, tag=tag))
    return session.image(tag, pipeline_bundle)
