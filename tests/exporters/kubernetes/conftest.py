"""A bundle with an awkward name and a 3 MiB artifact, built once, and helpers that export and read manifests.

The service needs modelbundle alone, so its lock comes from the session's cache
(``fixtures.session.CACHE``), which the bundler tests warm as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.cli import cli, ok
from modelbundle.bundler import LocalStore, StoredBundle

#: lowercase, but a leading digit, '_', '.' and a trailing '-': none of them fit a Kubernetes name as they are
BUNDLE_NAME = "3d_model.v2-"
ARTIFACT_SIZE = 3 * 1024 * 1024
IMAGE = "registry.example.com:5000/models/three-d:0123abcd"

SERVICE = '''\
from modelbundle import Artifact, Service, api


class Weights(Service):
    """Adds the first byte of its weights file to every number."""

    weights = Artifact("file", path="weights.bin")

    def setup(self):
        self.offset = self.weights.read_bytes()[0]

    @api
    def add(self, x: list[float]) -> list[float]:
        return [v + self.offset for v in x]
'''


@dataclass(frozen=True)
class Built:
    home: Path
    tag: str

    def bundle(self) -> StoredBundle:
        return LocalStore(self.home).get(self.tag)


def read_manifests(directory: Path) -> dict[str, dict[str, Any]]:
    """File name -> the one YAML document in it."""
    found = {}
    for path in sorted(directory.iterdir()):
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert len(documents) == 1, path
        found[path.name] = documents[0]
    return found


@pytest.fixture(scope="package")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    project, home = tmp_path_factory.mktemp("weights-project"), tmp_path_factory.mktemp("weights-home")
    (project / "weights.py").write_text(SERVICE)
    (project / "weights.bin").write_bytes(bytes([7]) + bytes(range(256)) * (ARTIFACT_SIZE // 256) + b"\0" * 255)
    result = ok(cli("build", project / "weights.py:Weights", "--name", BUNDLE_NAME, "-o", "tag", home=home))
    return Built(home, result.stdout.strip().splitlines()[-1])


@pytest.fixture
def bundle(built: Built) -> StoredBundle:
    return built.bundle()


@pytest.fixture(autouse=True)
def _no_stray_home(tmp_path: Path) -> Iterator[None]:
    """Library calls in tests get the store explicitly; nothing may touch ~/.modelbundle."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELBUNDLE_HOME", str(tmp_path / "unused-home"))
        yield
