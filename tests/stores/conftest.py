"""Fixtures for the store tests: bundles built once per session, and a store URL per kind of store.

Builds share the machine-wide lock cache of the bundler tests, so the iris
requirements are locked once. Two iris versions exist: the example, and the
same with a one-line code change (the artifact and environment are unchanged).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import SHARED_CACHE
from modelbundle.bundler import StoredBundle

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class IrisBundles:
    home: Path
    first: StoredBundle
    code_change: StoredBundle  # same model and environment, one line of code changed
    rows: list[list[float]]
    expected: list[int]
    project: Path  # the code change's sources


def wait_past(*created: str) -> None:
    """Until the clock's second is past every ``created_at``: a bundle built next is strictly newer (they have whole seconds)."""
    newest = max(datetime.fromisoformat(value) for value in created)
    while datetime.now(timezone.utc).replace(microsecond=0) <= newest:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def iris_bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IrisBundles]:
    root = tmp_path_factory.mktemp("iris-project")
    home = tmp_path_factory.mktemp("iris-home")
    for name in ("service.py", "train.py"):
        shutil.copy(REPO / "examples" / "iris" / name, root / name)
    subprocess.run([sys.executable, str(root / "train.py")], check=True, capture_output=True)
    first = build_in_process(f"{root}/service.py:IrisClassifier", root, home)
    source = (root / "service.py").read_text()
    (root / "service.py").write_text(source.replace('"""The predicted class id of each row."""', '"""Class ids."""'))
    changed = build_in_process(f"{root}/service.py:IrisClassifier", root, home)
    assert first.manifest.version != changed.manifest.version
    import joblib
    from sklearn.datasets import load_iris

    rows = load_iris().data[::10].tolist()
    expected = joblib.load(root / "model.joblib").predict(rows).tolist()
    yield IrisBundles(home, first, changed, rows, expected, root)


BIG_SERVICE = '''\
from modelbundle import Artifact, Service, api


class Big(Service):
    """Serves the size of a large file artifact (for interrupted transfers)."""

    blob = Artifact("file", path="blob.bin")

    @api
    def size(self, unit: str) -> int:
        return self.blob.stat().st_size
'''


@pytest.fixture(scope="session")
def big_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoredBundle]:
    """A bundle with a 48 MiB artifact: slow enough to stop a transfer half way."""
    root = tmp_path_factory.mktemp("big-project")
    home = tmp_path_factory.mktemp("big-home")
    (root / "service.py").write_text(BIG_SERVICE)
    (root / "blob.bin").write_bytes(os.urandom(48 * 1024 * 1024))
    bundle = build_in_process(f"{root}/service.py:Big", root, home)
    return home, bundle


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELBUNDLE_HOME for the pulling side."""
    home = tmp_path / "pulled-home"
    monkeypatch.setenv("MODELBUNDLE_HOME", str(home))
    monkeypatch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
    return home


