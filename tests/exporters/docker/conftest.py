"""Fixtures for the containerize tests: the real engine, bundles built once, images built once per session.

Images are built with the real ``bundle containerize`` command on the base
image made by ``scripts/build-base-image.sh``. Builds share the session's lock
and wheel cache with the other tests, so each set of requirements is locked once.
Every tag is under the session's ``PREFIX``, so two sessions on one machine never
share an image, and the end of the session removes what is left of them.
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

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


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
def mlp_bundle(session: ImageSession) -> StoredBundle:
    return build_in_process(f"{REPO}/examples/mlp/service.py:MLP", REPO / "examples" / "mlp", session.home)


@pytest.fixture(scope="session")
def iris_image(session: ImageSession, iris_bundle: StoredBundle) -> Image:
    """Built with --keep-builder: the classic build of its --context-only folder then finds the install in the cache."""
    tag = f"{PREFIX}/iris:{iris_bundle.manifest.version}"
    ok(session.containerize(iris_bundle.tag, "--keep-builder", tag=tag))
    session.tags.append(f"{tag}-builder")
    return session.image(tag, iris_bundle)


@pytest.fixture(scope="session")
def mlp_image(session: ImageSession, mlp_bundle: StoredBundle) -> Image:
    tag = f"{PREFIX}/mlp:{mlp_bundle.manifest.version}"
    ok(session.containerize(mlp_bundle.tag, tag=tag))
    return session.image(tag, mlp_bundle)
