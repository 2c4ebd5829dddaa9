"""MLflow model directories: described once at build time, loaded at serve time.

The ``MLmodel`` file is YAML, read with PyYAML on the build side only (the ``build``
extra has it); what serving needs from it goes into the bundle's ``artifact.json``,
so a served bundle reads JSON and never needs PyYAML. A scikit-learn model saved with
pickle, cloudpickle or skops loads without mlflow; every other flavor loads with
mlflow's own loader.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from ..errors import ArtifactError

MLMODEL = "MLmodel"
PYFUNC = "python_function"
#: sklearn serializations loaded here without mlflow (MLflow's own names)
NATIVE_SKLEARN_FORMATS = ("pickle", "cloudpickle", "skops")
#: distributions of mlflow itself, left out of the bundle when the model loads without it
MLFLOW_DISTRIBUTIONS = ("mlflow", "mlflow-skinny")


def describe_model_dir(path: Path, flavor: str | None, artifact: str) -> dict[str, Any]:
    """What serving needs from an MLflow model directory's ``MLmodel``; errors name the file and the fix."""
    mlmodel = path / MLMODEL
    if not mlmodel.is_file():
        raise ArtifactError(
            f"artifact '{artifact}': {mlmodel} does not exist; point it at a directory saved by "
            "mlflow.<flavor>.save_model (the one holding the MLmodel file)"
        )
    data = _read_yaml(mlmodel)
    flavors = data.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise ArtifactError(f"{mlmodel}: no flavors; save the model again with mlflow.<flavor>.save_model")
    chosen = flavor or PYFUNC
    if chosen not in flavors:
        raise ArtifactError(
            f"{mlmodel}: the model has no {chosen!r} flavor (it has {', '.join(sorted(flavors))}); "
            f"declare Artifact('mlflow', flavor=...) with one of them"
        )
    sklearn = flavors.get("sklearn")
    pyfunc = flavors.get(PYFUNC)
    pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
    meta: dict[str, Any] = {
        "filename": "model",
        "flavor": chosen,
        "flavors": sorted(flavors),
        "loader_module": pyfunc.get("loader_module"),
        "mlflow_version": _str_or_none(data.get("mlflow_version")),
        "signature": _signature(data.get("signature"), mlmodel),
        "input_example": _input_example(path, data.get("saved_input_example_info")),
    }
    if isinstance(sklearn, dict):
        meta["sklearn"] = {
            "pickled_model": sklearn.get("pickled_model", "model.pkl"),
            "serialization_format": sklearn.get("serialization_format", "cloudpickle"),
            "sklearn_version": _str_or_none(sklearn.get("sklearn_version")),
        }
    meta["needs_mlflow"] = not loads_natively(meta)
    if (path / "conda.yaml").is_file():
        meta["conda_env"] = "conda.yaml"  # kept byte for byte in the artifact, recorded for conda users
    meta["requirements"], meta["python"] = _requirements(path, meta["needs_mlflow"])
    return meta


def loads_natively(meta: dict[str, Any]) -> bool:
    """A scikit-learn model in a format read here: serving it needs no mlflow."""
    sklearn = meta.get("sklearn")
    if sklearn is None or sklearn.get("serialization_format") not in NATIVE_SKLEARN_FORMATS:
        return False
    return meta["flavor"] == "sklearn" or (meta["flavor"] == PYFUNC and meta.get("loader_module") == "mlflow.sklearn")


def load_model_dir(path: Path, meta: dict[str, Any], artifact: str) -> Any:
    """The model, with the flavor's own loader (or natively, for scikit-learn in pickle/cloudpickle/skops)."""
    if loads_natively(meta):
        estimator = _load_sklearn(path, meta["sklearn"], artifact)
        return estimator if meta["flavor"] == "sklearn" else SklearnPyfunc(estimator, meta.get("signature"))
    mlflow = _import_mlflow(path, meta, artifact)
    if meta["flavor"] == PYFUNC:
        return mlflow.pyfunc.load_model(str(path))
    return importlib.import_module(f"mlflow.{meta['flavor']}").load_model(str(path))


class SklearnPyfunc:
    """What ``mlflow.pyfunc.load_model`` gives for a scikit-learn model, without mlflow:
    ``predict`` orders and casts DataFrame columns as the signature declares, then calls the estimator."""

    def __init__(self, estimator: Any, signature: dict[str, Any] | None) -> None:
        self.estimator = estimator
        inputs = (signature or {}).get("inputs") or []
        self._columns = {c["name"]: c["type"] for c in inputs if c.get("type") != "tensor" and c.get("name")}

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if self._columns and hasattr(data, "columns"):
            data = data[list(self._columns)].astype({n: COLUMN_DTYPES[t] for n, t in self._columns.items()})
        return self.estimator.predict(data)

    def unwrap_python_model(self) -> Any:
        return self.estimator


#: MLflow column types -> pandas dtypes (the ones a DataFrame body can carry)
COLUMN_DTYPES = {
    "boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
    "string": "object", "datetime": "datetime64[ns]",
}


def _load_sklearn(path: Path, sklearn: dict[str, Any], artifact: str) -> Any:
    from ._artifact_kinds import SklearnKind, check_framework_version

    kind = SklearnKind()
    kind.import_framework(artifact)
    check_framework_version(kind, sklearn.get("sklearn_version"), artifact)
    model_file = path / sklearn["pickled_model"]
    if sklearn["serialization_format"] == "skops":
        try:
            skops_io = importlib.import_module("skops.io")
        except ImportError:
            raise ArtifactError(f"artifact '{artifact}': {model_file} is in skops format; pip install skops") from None
        return skops_io.load(model_file, trusted=skops_io.get_untrusted_types(file=model_file))
    import pickle

    with open(model_file, "rb") as f:
        return pickle.load(f)  # cloudpickle writes plain pickle data


def _import_mlflow(path: Path, meta: dict[str, Any], artifact: str) -> Any:
    saved = meta.get("mlflow_version") or ""
    pin = f"mlflow=={saved}" if saved else "mlflow"
    try:
        mlflow = importlib.import_module("mlflow")
    except ImportError:
        raise ArtifactError(
            f"artifact '{artifact}': {path / MLMODEL} has flavor {meta['flavor']!r}, which loads with mlflow; pip install '{pin}'"
        ) from None
    installed = str(getattr(mlflow, "__version__", ""))
    if saved and installed and saved.split(".")[0] != installed.split(".")[0]:
        raise ArtifactError(
            f"{path / MLMODEL} was saved by MLflow {saved} but {installed} is installed (another major version); "
            f"pip install '{pin}', or save the model again with MLflow {installed}"
        )
    return mlflow


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        raise ArtifactError(f"reading {path} needs PyYAML; pip install 'modelbundle[build]'") from None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ArtifactError(f"{path} is not readable YAML ({type(exc).__name__}); save the model again with MLflow") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} is not an MLmodel file (not a mapping); save the model again with MLflow")
    return data


def _signature(raw: Any, mlmodel: Path) -> dict[str, Any] | None:
    """The signature's inputs and outputs, parsed (MLmodel keeps each as a JSON string)."""
    if not isinstance(raw, dict):
        return None
    parsed: dict[str, Any] = {}
    for key in ("inputs", "outputs"):
        value = raw.get(key)
        try:
            parsed[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise ArtifactError(f"{mlmodel}: signature {key} is not JSON; save the model again with a signature") from None
    return parsed


def _input_example(path: Path, info: Any) -> Any:
    """The saved input example as plain JSON (MLflow writes ndarrays as {"inputs": ...}, frames split-oriented)."""
    if not isinstance(info, dict) or not isinstance(info.get("artifact_path"), str):
        return None
    try:
        example = json.loads((path / info["artifact_path"]).read_text())
    except (OSError, ValueError):
        return None
    if info.get("type") == "dataframe" and isinstance(example, dict) and "columns" in example and "data" in example:
        return {"dataframe_records": [dict(zip(example["columns"], row, strict=False)) for row in example["data"]]}
    if isinstance(example, dict) and "inputs" in example:
        return {"inputs": example["inputs"]}
    return {"inputs": example}


def _requirements(path: Path, needs_mlflow: bool) -> tuple[list[str], str | None]:
    """The model's own requirements (requirements.txt, python_env.yaml's dependencies), and its Python version."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    lines: list[str] = []
    python = None
    env_file = path / "python_env.yaml"
    if env_file.is_file():
        env = _read_yaml(env_file)
        python = _str_or_none(env.get("python"))
        lines += [str(d) for d in env.get("dependencies") or [] if not str(d).startswith("-")]
    requirements_file = path / "requirements.txt"
    if requirements_file.is_file():
        lines += [ln.split(" #", 1)[0].strip() for ln in requirements_file.read_text().splitlines()]
    kept: list[str] = []
    for line in lines:
        if not line or line.startswith(("#", "-")):
            continue
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            raise ArtifactError(f"{requirements_file}: {line!r} is not a requirement; fix or remove that line") from None
        if not needs_mlflow and name in MLFLOW_DISTRIBUTIONS:
            continue  # loaded here without mlflow: leave it (and its hundred dependencies) out
        if line not in kept:
            kept.append(line)
    return kept, python


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
