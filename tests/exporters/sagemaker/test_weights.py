"""Referenced weights in SageMaker model data: model.tar.gz carries them, and /opt/ml/model serves them in place."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from fixtures.weights import WeightedBundles
from modelbundle.errors import IntegrityError
from modelbundle.exporters.sagemaker import export_model_data
from modelbundle.runtime._model_dir import model_dir_loader, model_dir_manifest


def test_model_data_carries_the_weights_and_serves_them_without_their_origin(
    weighted_bundles: WeightedBundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = weighted_bundles.first
    monkeypatch.setenv("MODELBUNDLE_HOME", str(tmp_path / "exporting-home"))  # an empty cache: the export fetches
    archive = export_model_data(bundle, tmp_path / "out")
    blob = f"blobs/sha256/{weighted_bundles.sha256}"
    model_dir = tmp_path / "model"
    with tarfile.open(archive.path) as tar:
        assert blob in tar.getnames()
        tar.extractall(model_dir, filter="data")
    assert (model_dir / blob).read_bytes() == weighted_bundles.source.read_bytes()

    # SageMaker's container: another, empty cache and no network allowed; the weights come from the model data
    monkeypatch.setenv("MODELBUNDLE_HOME", str(tmp_path / "serving-home"))
    monkeypatch.setenv("MODELBUNDLE_OFFLINE", "1")
    loaded = model_dir_loader(model_dir, bundle.manifest)()
    assert loaded["weights"] == model_dir / blob
    assert not (tmp_path / "serving-home").exists()  # nothing fetched, nothing written

    # the weights are checked like the artifacts: a changed byte is refused before anything loads
    data = bytearray((model_dir / blob).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir / blob).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=blob):
        model_dir_manifest(model_dir, bundle.manifest)
