"""``Service.pack(model=obj).save()``: objects from __main__ survive with cloudpickle; mistakes are clear errors."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelbundle import __version__
from modelbundle.errors import ArtifactError, BuildError
from modelbundle.service_base import Service, load_service

from ._helpers import Built, ok, serving, store_state

HOLDER = '''\
from modelbundle import Artifact, Service, api


class Holder(Service):
    model = Artifact("pickle")

    @api
    def predict(self, x: list[float]) -> list[float]:
        return x
'''


def test_pack_saves_an_object_from_main_with_cloudpickle(affine: Built) -> None:
    data = affine.manifest()
    assert affine.tag.startswith("affine:")
    [model] = data["artifacts"]
    assert (model["name"], model["kind"], model["framework"], model["framework_version"]) == (
        "model", "pickle", "cloudpickle", importlib.metadata.version("cloudpickle"),
    )
    assert (affine.path / "artifacts" / "model" / "model.pkl").is_file()
    assert data["labels"] == {"origin": "script", "ai.modelbundle.secret-scan": "clean"}
    assert data["service"] == "affine_service:Affine"
    assert data["dependencies"]["requirements"] == [f"modelbundle=={__version__}"]
    # the script that defined the model's class is not in the bundle: the class travels inside the pickle
    src = affine.path / "src"
    assert [p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()] == ["affine_service.py"]


def test_the_packed_object_loads_in_a_fresh_process(affine: Built, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from modelbundle.bundler import open_bundle\n"
        f"bundle = open_bundle({affine.tag!r})\n"
        "model = bundle.artifact_loader()()['model']\n"
        "print(type(model).__module__, type(model).__name__, model.transform([0.5, 2.0]))\n"
    )
    result = ok(subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "MODELBUNDLE_HOME": str(affine.home)},
    ))
    assert result.stdout.split(maxsplit=2) == ["__main__", "Line", "[2.5, 7.0]\n"]


def test_the_packed_bundle_serves(affine: Built) -> None:
    with serving([sys.executable, "-m", "modelbundle"], affine.tag, affine.home) as server:
        response = server.post("/predict", json={"x": [1.0, 2.0, -1.0]})
        assert response.status_code == 200, response.text
        assert response.json() == [4.0, 7.0, -2.0]


@pytest.fixture
def holder(tmp_path: Path) -> type[Service]:
    """A service module in a file of its own, as a user writes it."""
    module = tmp_path / "holder_project" / "holder_service.py"
    module.parent.mkdir()
    module.write_text(HOLDER)
    return load_service(f"{module}:Holder")


def test_pack_refuses_an_unknown_artifact(holder: type[Service]) -> None:
    with pytest.raises(ArtifactError, match=r"^Holder\.pack\(\) got unknown artifacts \['weights'\]; declared: model$"):
        holder.pack(model=1, weights=2)


def test_saving_an_artifact_without_a_value_or_path_is_a_build_error(holder: type[Service], home: Path) -> None:
    with pytest.raises(
        BuildError,
        match=r"^artifact 'model' of Holder has no value: bind it with Holder\.pack\(model=\.\.\.\)\.save\(\), "
        r"or declare Artifact\('pickle', path=\.\.\.\)$",
    ):
        holder.pack().save(name="holder")
    assert store_state(home) == ([], [])  # nothing committed, no staging left behind


def test_an_object_that_cannot_be_pickled_is_a_build_error(holder: type[Service], home: Path) -> None:
    with pytest.raises(BuildError, match=r"^artifact 'model' \(pickle\) could not be saved: TypeError: .*generator"):
        holder.pack(model=(i for i in range(3))).save(name="holder")
    assert store_state(home) == ([], [])
