"""MLflow models: `bundle build --mlflow` on directories saved by mlflow itself, served by a real `bundle serve`.

Answers are compared with what ``mlflow.pyfunc.load_model(...).predict`` gives on the
same rows; the bundle's runtime lock must hold no mlflow (scikit-learn loads without it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures.cli import cli, failed, ok
from fixtures.mlflow_models import IRIS_COLUMNS, pyfunc_predict
from modelbundle.bundler import LocalStore, build_mlflow, read_lock, resolve_build_options

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.5, 5.0, 1.9]]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("mlflow-home")


@pytest.fixture(scope="module")
def tensor_tag(home, mlflow_tensor_model):
    return ok(cli("build", "--mlflow", mlflow_tensor_model, "-o", "tag", home=home)).stdout.strip()


def _bundle_dir(home: Path, tag: str) -> Path:
    name, version = tag.split(":")
    return home / "bundles" / name / version


def _locked_names(bundle: Path) -> set[str]:
    return {d.name for d in read_lock(bundle / "env" / "requirements.lock")}


def test_a_tensor_signature_is_served_batched_and_answers_like_pyfunc(home, tensor_tag, mlflow_tensor_model, serve_in_subprocess):
    bundle = _bundle_dir(home, tensor_tag)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (predict,) = manifest["apis"]
    assert (predict["route"], predict["batchable"]) == ("/predict", True)
    assert tensor_tag.startswith(f"{mlflow_tensor_model.name}:")  # named after the model's folder
    # the model directory is in the bundle byte for byte
    for file in mlflow_tensor_model.rglob("*"):
        if file.is_file():
            assert (bundle / "artifacts" / "model" / "model" / file.relative_to(mlflow_tensor_model)).read_bytes() == file.read_bytes()
    # scikit-learn in cloudpickle loads without mlflow: none of it in the runtime lock, the model's pins in
    locked = _locked_names(bundle)
    assert "scikit-learn" in locked
    assert not {"mlflow", "mlflow-skinny"} & locked
    model_pins = [ln for ln in (mlflow_tensor_model / "requirements.txt").read_text().splitlines() if ln.startswith("scikit-learn")]
    assert model_pins and model_pins[0] in (bundle / "env" / "requirements.in").read_text().splitlines()
    # the input example is the OpenAPI document's example body
    example = json.loads((mlflow_tensor_model / "input_example.json").read_text())
    openapi = json.loads((bundle / "openapi.json").read_text())
    body = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"]["inputs"] == (example["inputs"] if isinstance(example, dict) else example)

    expected = pyfunc_predict(mlflow_tensor_model, np.array(ROWS))
    with serve_in_subprocess(tensor_tag, env={"MODELBUNDLE_HOME": str(home)}) as server:
        answer = server.post("/predict", json={"inputs": ROWS})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        assert server.post("/predict", json=ROWS).json() == expected  # the bare value too
        assert server.post("/predict", json={"inputs": [[1.0, 2.0]]}).status_code == 422  # shape (-1, 4) checked

        bodies = [{"inputs": [ROWS[i % 4]]} for i in range(80)]
        scrape = server.scrape()
        rows0, calls0 = scrape.value("modelbundle_batch_size_sum", api="predict"), scrape.value("modelbundle_batch_size_count", api="predict")
        responses = server.post_concurrently("/predict", bodies)
        assert [r.json() for r in responses] == [[expected[i % 4]] for i in range(80)]
        scrape = server.scrape()
        rows = scrape.value("modelbundle_batch_size_sum", api="predict") - rows0
        calls = scrape.value("modelbundle_batch_size_count", api="predict") - calls0
        assert rows == 80 and calls < 80, (rows, calls)


def test_a_column_signature_takes_json_records_and_csv(home, mlflow_column_model, serve_in_subprocess):
    options = resolve_build_options({"quiet": True}, home)
    bundle = build_mlflow(str(mlflow_column_model), options, LocalStore(home))
    assert not {"mlflow", "mlflow-skinny"} & _locked_names(bundle.path)
    assert "pandas" in _locked_names(bundle.path)
    frame = pd.DataFrame(ROWS, columns=IRIS_COLUMNS)
    expected = pyfunc_predict(mlflow_column_model, frame)
    # columns in another order, and ints where the signature says double: the signature's order and types win
    records = [{k: row[k] for k in reversed(IRIS_COLUMNS)} for row in frame.to_dict(orient="records")]
    records[0] = {**records[0], "petal_width": 1}
    expected_first = pyfunc_predict(mlflow_column_model, pd.DataFrame([records[0]]))
    with serve_in_subprocess(bundle.tag, env={"MODELBUNDLE_HOME": str(home)}) as server:
        answer = server.post("/predict", json={"dataframe_records": records})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected_first + expected[1:]
        csv = server.post("/predict", content=frame.to_csv(index=False), headers={"Content-Type": "text/csv"})
        assert csv.status_code == 200, csv.text
        assert csv.json() == expected
        missing = server.post("/predict", json=[{"sepal_length": 1.0}])
        assert missing.status_code == 422 and "missing columns" in missing.text, missing.text
    openapi = json.loads((bundle.path / "openapi.json").read_text())
    example = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert [sorted(r) for r in example["dataframe_records"]] == [sorted(IRIS_COLUMNS)] * 2


def _edited_copy(source: Path, target: Path, replace: dict[str, str]) -> Path:
    import shutil

    shutil.copytree(source, target)
    text = (target / "MLmodel").read_text()
    for old, new in replace.items():
        assert old in text, (old, text)
        text = text.replace(old, new)
    (target / "MLmodel").write_text(text)
    return target


def test_each_model_the_build_cannot_serve_is_one_line_naming_the_file_and_the_fix(tmp_path, home, mlflow_tensor_model):
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    error = failed(cli("build", "--mlflow", not_a_model, home=home))
    assert f"{not_a_model}/MLmodel does not exist" in error and "save_model" in error

    no_signature = tmp_path / "no_signature"
    no_signature_text = (mlflow_tensor_model / "MLmodel").read_text().split("signature:")[0]
    _edited_copy(mlflow_tensor_model, no_signature, {})
    (no_signature / "MLmodel").write_text(no_signature_text)
    error = failed(cli("build", "--mlflow", no_signature, home=home))
    assert "no signature" in error and "infer_signature" in error and str(no_signature / "MLmodel") in error

    strings = _edited_copy(mlflow_tensor_model, tmp_path / "strings", {'"dtype": "float64"': '"dtype": "str"'})
    error = failed(cli("build", "--mlflow", strings, home=home))
    assert "a tensor of dtype str" in error and "cannot serve" in error and "Artifact('mlflow'" in error

    no_flavor = _edited_copy(mlflow_tensor_model, tmp_path / "no_flavor", {"flavors:": "flavours:"})
    error = failed(cli("build", "--mlflow", no_flavor, home=home))
    assert "no flavors" in error and str(no_flavor / "MLmodel") in error


def test_artifact_mlflow_in_a_service_loads_the_native_flavor_or_pyfunc(tmp_path, monkeypatch, mlflow_tensor_model):
    from modelbundle import Artifact
    from modelbundle.adapters import artifact_kind
    from modelbundle.errors import ArtifactError, DefinitionError

    with pytest.raises(DefinitionError, match=r"Artifact\('sklearn'\) takes no flavor=\.\.\."):
        Artifact("sklearn", path="model.joblib", flavor="sklearn")

    native = artifact_kind("mlflow", flavor="sklearn")
    meta = native.describe_file(mlflow_tensor_model)
    estimator = native.read(mlflow_tensor_model, meta, "model")
    assert type(estimator).__name__ == "LogisticRegression"
    pyfunc = artifact_kind("mlflow")
    wrapped = pyfunc.read(mlflow_tensor_model, pyfunc.describe_file(mlflow_tensor_model), "model")
    assert wrapped.predict(np.array(ROWS)).tolist() == pyfunc_predict(mlflow_tensor_model, np.array(ROWS))

    with pytest.raises(ArtifactError, match=r"has no 'pytorch' flavor \(it has python_function, sklearn\)"):
        artifact_kind("mlflow", flavor="pytorch").describe_file(mlflow_tensor_model)

    # a flavor that needs mlflow, saved by another major version: refused, naming MLmodel and the pin
    other = {**meta, "flavor": "python_function", "loader_module": "mlflow.pyfunc.model", "mlflow_version": "1.30.0"}
    with pytest.raises(ArtifactError, match=r"MLmodel was saved by MLflow 1\.30\.0 but .* pip install 'mlflow==1\.30\.0'"):
        pyfunc.read(mlflow_tensor_model, other, "model")
    # and where mlflow is not installed at all
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` meets without it
    with pytest.raises(ArtifactError, match=r"MLmodel has flavor 'python_function', which loads with mlflow; pip install 'mlflow==1\.30\.0'"):
        pyfunc.read(mlflow_tensor_model, other, "model")


PACKED_SERVICE = '''\
import numpy as np
from numpy.typing import NDArray

from modelbundle import Artifact, Service, api


class Packed(Service):
    model = Artifact("mlflow", flavor="sklearn")

    @api
    def predict(self, x: NDArray[np.float64]) -> list[str]:
        return [type(self.model).__name__, *map(str, self.model.predict(x))]
'''


def test_pack_takes_a_runs_uri_downloaded_by_mlflow_and_loads_the_native_flavor(tmp_path, monkeypatch, mlflow_tensor_model):
    import importlib.util
    import pickle
    import warnings

    import modelbundle
    from fixtures.cli import SHARED_CACHE
    from modelbundle.bundler import BuildOptions, build_packed

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local tracking store, no server
    monkeypatch.setenv("MODELBUNDLE_CACHE_DIR", str(SHARED_CACHE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's own warnings about pickles and its file store
        import mlflow.sklearn

        with (mlflow_tensor_model / "model.pkl").open("rb") as f:
            estimator = pickle.load(f)
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(estimator, name="model", serialization_format="cloudpickle")
    project = tmp_path / "project"
    project.mkdir()
    (project / "packed_service.py").write_text(PACKED_SERVICE)
    spec = importlib.util.spec_from_file_location("packed_service", project / "packed_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["packed_service"] = module  # the bundler finds the source through sys.modules
    try:
        spec.loader.exec_module(module)
        packed = module.Packed.pack(model=f"runs:/{run.info.run_id}/model")
        bundle = build_packed(packed, BuildOptions(name="packed", quiet=True), LocalStore(tmp_path / "home"))
    finally:
        del sys.modules["packed_service"]
    assert (bundle.path / "artifacts" / "model" / "model" / "MLmodel").is_file()
    assert not {"mlflow", "mlflow-skinny"} & _locked_names(bundle.path)
    expected = [str(v) for v in estimator.predict(np.array(ROWS))]
    assert modelbundle.load(str(bundle.path)).predict(np.array(ROWS)) == ["LogisticRegression", *expected]


def test_the_users_pins_win_then_the_models_then_inference(tmp_path, mlflow_tensor_model):
    from modelbundle.adapters import artifact_kind
    from modelbundle.bundler import BuildOptions, Reporter
    from modelbundle.bundler._assemble import _requirements
    from modelbundle.bundler._manifest import ArtifactInfo

    model = tmp_path / "model"
    _edited_copy(mlflow_tensor_model, model, {})
    (model / "requirements.txt").write_text("mlflow==3.0.0\nnumpy==1.26.4\npandas==2.2.3\n")
    meta = artifact_kind("mlflow").describe_file(model)
    assert meta["requirements"] == ["numpy==1.26.4", "pandas==2.2.3"]  # no mlflow: scikit-learn loads without it
    info = ArtifactInfo(name="model", kind="mlflow", python_version="3.11", meta=meta)
    options = BuildOptions(python_packages=["pandas==2.1.0"], quiet=True)
    resolved, _ = _requirements({"numpy", "pandas", "packaging"}, set(), [info], options, Reporter(True))
    lines = resolved.lines()
    assert "numpy==1.26.4" in lines  # the model's pin over the installed numpy inference found
    assert "pandas==2.1.0" in lines and "pandas==2.2.3" not in lines  # the user's over the model's
    assert any(line.startswith("packaging==") for line in lines)  # inference fills in the rest
    assert not any(line.startswith("mlflow") for line in lines)
