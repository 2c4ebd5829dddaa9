"""Fixtures for the Lambda image tests: the iris example's bundle, its --target lambda-image image (built once), the Runtime API."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli
from fixtures.docker import REPO, docker_client, ensure_base_image
from fixtures.session import KEEP, PREFIX
from fixtures.venvs import REQUIREMENTS
from modelbundle.bundler import StoredBundle

from ._runtime_api import RuntimeAPI


@dataclass(frozen=True)
class LambdaImage:
    tag: str
    bundle: StoredBundle
    engine: Any
    project: Path


@pytest.fixture(scope="session")
def lambda_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaImage]:
    engine = docker_client()
    base_image = ensure_base_image(engine)
    home = tmp_path_factory.mktemp("lambda-image-home")
    project = tmp_path_factory.mktemp("iris-example")
    for name in ("service.py", "train.py"):
        shutil.copy(REPO / "examples" / "iris" / name, project / name)
    subprocess.run([sys.executable, "train.py"], cwd=project, check=True, capture_output=True)
    stored = build_in_process(f"{project}/service.py:IrisClassifier", project, home)
    tag = f"{PREFIX}/iris:{stored.manifest.version}-lambda"
    started = time.perf_counter()
    result = cli(
        "containerize", stored.tag, "--target", "lambda-image", "--target-lock", REQUIREMENTS / "lambda-image-target.lock",
        "--base-image", base_image, "-t", tag, home=home,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-4000:]}"
    print(f"\nbuilt {tag} (--target lambda-image) in {time.perf_counter() - started:.1f} s")
    yield LambdaImage(tag, stored, engine, project)
    if not KEEP:
        with contextlib.suppress(Exception):
            engine.images.remove(tag)


@pytest.fixture
def runtime_api() -> Iterator[RuntimeAPI]:
    api = RuntimeAPI().start()
    yield api
    api.stop()
