"""``bundle export sagemaker`` (model.tar.gz) and ``--model-dir``: deterministic archives, checks against the bundle."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from modelbundle.bundler import StoredBundle
from modelbundle.errors import ArtifactError, IntegrityError, ServeError
from modelbundle.exporters.sagemaker import MODEL_DATA_FILE, export_model_data
from modelbundle.runtime import ServeConfig
from modelbundle.runtime._model_dir import MODEL_DATA_FILE as READ_FILE
from modelbundle.runtime._model_dir import model_dir_loader, model_dir_manifest
from modelbundle.runtime._server import artifacts_from
from modelbundle.runtime._source import resolve_source

from .conftest import ROWS


@pytest.fixture
def model_dir(shifted_model_dir: Path, tmp_path: Path) -> Path:
    """A copy this test may change."""
    return Path(shutil.copytree(shifted_model_dir, tmp_path / "model"))


def test_the_archive_is_deterministic_and_holds_only_artifacts(shifted_bundle: StoredBundle, tmp_path: Path) -> None:
    first = export_model_data(shifted_bundle, tmp_path / "a")
    second = export_model_data(shifted_bundle, tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256 and first.files == 2
    with tarfile.open(first.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        MODEL_DATA_FILE, "artifacts", "artifacts/model", "artifacts/model/artifact.json", "artifacts/model/model.joblib",
    ]
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(0, 0, "", 315532800)}
    assert MODEL_DATA_FILE == READ_FILE  # the exporter writes what the runtime reads


def test_model_data_describes_its_source(shifted_bundle: StoredBundle, shifted_model_dir: Path) -> None:
    data = json.loads((shifted_model_dir / MODEL_DATA_FILE).read_text())
    assert data["bundle"] == shifted_bundle.tag
    assert data["service"] == "service:IrisPair"
    assert [a["name"] for a in data["artifacts"]] == ["model"]
    assert set(data["files"]) == {"artifacts/model/artifact.json", "artifacts/model/model.joblib"}


def test_the_bundle_serves_the_model_data_artifacts(base_bundle: StoredBundle, shifted_model_dir: Path) -> None:
    loaded = model_dir_loader(shifted_model_dir, base_bundle.manifest)()
    assert loaded["model"].predict(np.array(ROWS)).tolist() == [10, 12, 11]


def test_other_artifact_names_are_refused(base_bundle: StoredBundle, model_dir: Path) -> None:
    description = json.loads((model_dir / MODEL_DATA_FILE).read_text())
    description["artifacts"][0]["name"] = "weights"
    (model_dir / MODEL_DATA_FILE).write_text(json.dumps(description))
    with pytest.raises(ArtifactError, match=rf"holds 'weights' \(sklearn\), but {base_bundle.tag} needs 'model' \(sklearn\); export"):
        model_dir_manifest(model_dir, base_bundle.manifest)


def test_another_kind_is_refused(base_bundle: StoredBundle, model_dir: Path) -> None:
    description = json.loads((model_dir / MODEL_DATA_FILE).read_text())
    description["artifacts"][0]["kind"] = "pickle"
    (model_dir / MODEL_DATA_FILE).write_text(json.dumps(description))
    with pytest.raises(ArtifactError, match=r"holds 'model' \(pickle\), but .* needs 'model' \(sklearn\)"):
        model_dir_manifest(model_dir, base_bundle.manifest)


def test_a_changed_file_is_refused_naming_it(base_bundle: StoredBundle, model_dir: Path) -> None:
    with open(model_dir / "artifacts" / "model" / "model.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IntegrityError, match=r"model\.joblib does not match its digest"):
        model_dir_manifest(model_dir, base_bundle.manifest)


def test_an_unlisted_file_is_refused(base_bundle: StoredBundle, model_dir: Path) -> None:
    (model_dir / "artifacts" / "model" / "extra.bin").write_bytes(b"1")
    with pytest.raises(IntegrityError, match=r"extra\.bin is not listed in modelbundle-model\.json"):
        model_dir_manifest(model_dir, base_bundle.manifest)


def test_a_folder_without_the_description_is_refused(base_bundle: StoredBundle, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"holds no modelbundle-model\.json, so it is not model data"):
        model_dir_manifest(tmp_path, base_bundle.manifest)


def test_model_dir_needs_a_bundle_target(shifted_model_dir: Path) -> None:
    source = resolve_source(f"{Path(__file__).with_name('pair.py')}:Pair")
    with pytest.raises(ServeError, match=r"^--model-dir replaces a bundle's artifacts; module .* is not a bundle"):
        artifacts_from(source, ServeConfig(model_dir=str(shifted_model_dir)))


def test_model_dir_is_checked_when_the_bundle_is_opened(base_bundle: StoredBundle, tmp_path: Path) -> None:
    source = resolve_source(str(base_bundle.path))
    with pytest.raises(ArtifactError, match=r"holds no modelbundle-model\.json"):
        artifacts_from(source, ServeConfig(model_dir=str(tmp_path)))
