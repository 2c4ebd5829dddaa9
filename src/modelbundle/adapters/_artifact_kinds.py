"""Saving and loading model artifacts in each framework's own format.

Each kind records the framework and its version when saving; loading refuses
a different major version with advice, and warns on a different minor one.
Frameworks are imported only when an artifact of their kind is used.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..errors import ArtifactError

KINDS = ("pickle", "joblib", "sklearn", "xgboost", "lightgbm", "torch", "onnx", "mlflow", "file", "dir")


class ArtifactKind:
    """How one kind of artifact is written to and read from a directory."""

    name = ""
    #: the distribution whose version is recorded and checked ("" for plain files)
    framework = ""
    #: the import name of the framework module
    module = ""
    #: the file the value is saved to inside the artifact's directory
    filename = "model"
    #: keyword options ``Artifact(kind, ...)`` may pass to this kind
    option_names: tuple[str, ...] = ()

    def __init__(self, **options: Any) -> None:
        self.options = options

    def framework_version(self) -> str | None:
        if not self.framework:
            return None
        import importlib.metadata  # costs ~30 ms; `import modelbundle` must stay light

        try:
            return importlib.metadata.version(self.framework)
        except importlib.metadata.PackageNotFoundError:
            return None

    def import_framework(self, artifact: str) -> Any:
        try:
            return importlib.import_module(self.module)
        except ImportError:
            raise ArtifactError(
                f"artifact '{artifact}' is of kind {self.name}, which needs {self.framework}; pip install {self.framework}"
            ) from None

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        """Write ``value`` into ``directory``; return extra metadata for artifact.json."""
        raise NotImplementedError

    def copy_file(self, source: Path, directory: Path) -> dict[str, Any]:
        """Take an artifact that already is a file on disk (``Artifact(kind, path=...)``)."""
        shutil.copyfile(source, directory / self.filename)
        return self.describe_file(source)

    def describe_file(self, source: Path) -> dict[str, Any]:
        """Metadata of an artifact file on disk, as ``save`` would record it."""
        return {}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        """Load the artifact from its file (or folder) at ``path``."""
        raise NotImplementedError

    def load(self, directory: Path, meta: dict[str, Any], artifact: str) -> Any:
        """Load the artifact saved in a bundle's ``artifacts/<name>/`` folder."""
        return self.read(directory / meta.get("filename", self.filename), meta, artifact)


class PickleKind(ArtifactKind):
    """Any Python object, with cloudpickle: classes defined in ``__main__`` or a notebook survive."""

    name, framework, module, filename = "pickle", "cloudpickle", "cloudpickle", "model.pkl"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        self.import_framework(artifact)
        from ._pickling import reproducible_dumps

        # the same object gives the same bytes, so the same bundle version
        (directory / self.filename).write_bytes(reproducible_dumps(value).data)
        return {}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        self.import_framework(artifact)
        import pickle

        with open(path, "rb") as f:
            return pickle.load(f)  # cloudpickle output is plain pickle data


class JoblibKind(ArtifactKind):
    """Objects saved with joblib (efficient for large numpy arrays)."""

    name, framework, module, filename = "joblib", "joblib", "joblib", "model.joblib"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        self.import_framework(artifact).dump(value, directory / self.filename)
        return {}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        return self.import_framework(artifact).load(path)


class SklearnKind(JoblibKind):
    """scikit-learn estimators, in joblib format; the scikit-learn version is what is checked."""

    name, framework, module = "sklearn", "scikit-learn", "sklearn"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        self.import_framework(artifact)
        importlib.import_module("joblib").dump(value, directory / self.filename)
        return {"class": f"{type(value).__module__}.{type(value).__qualname__}"}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        self.import_framework(artifact)
        return importlib.import_module("joblib").load(path)


class XGBoostKind(ArtifactKind):
    """XGBoost boosters and scikit-learn style models, in XGBoost's JSON model format."""

    name, framework, module, filename = "xgboost", "xgboost", "xgboost", "model.json"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        self.import_framework(artifact)
        value.save_model(directory / self.filename)
        return {"class": f"{type(value).__module__}.{type(value).__qualname__}"}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        xgboost = self.import_framework(artifact)
        cls_path = meta.get("class", "xgboost.core.Booster")
        module_name, _, cls_name = cls_path.rpartition(".")
        model = getattr(importlib.import_module(module_name), cls_name)() if module_name.startswith("xgboost") else xgboost.Booster()
        model.load_model(path)
        return model


class LightGBMKind(ArtifactKind):
    """LightGBM boosters (a scikit-learn LGBM model saves its booster), in LightGBM's text format."""

    name, framework, module, filename = "lightgbm", "lightgbm", "lightgbm", "model.txt"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        self.import_framework(artifact)
        booster = getattr(value, "booster_", value)
        booster.save_model(str(directory / self.filename))
        return {}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        return self.import_framework(artifact).Booster(model_file=str(path))


class TorchKind(ArtifactKind):
    """PyTorch: TorchScript modules (torch.jit.save) or state_dicts (torch.save, loaded weights-only)."""

    name, framework, module, filename = "torch", "torch", "torch", "model.pt"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        torch = self.import_framework(artifact)
        if isinstance(value, torch.jit.ScriptModule):
            torch.jit.save(value, str(directory / self.filename))
            return {"format": "torchscript"}
        if isinstance(value, dict):
            torch.save(value, directory / self.filename)
            return {"format": "state_dict"}
        raise ArtifactError(
            f"artifact '{artifact}': a torch artifact is a TorchScript module or a state_dict; "
            "pass torch.jit.script(model) or model.state_dict()"
        )

    def describe_file(self, source: Path) -> dict[str, Any]:
        return {"format": "torchscript" if _is_zip_with(source, "constants.pkl") else "state_dict"}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        torch = self.import_framework(artifact)
        if meta.get("format") == "torchscript":
            return torch.jit.load(str(path), map_location="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)


class ONNXKind(ArtifactKind):
    """ONNX models (``onnx.ModelProto``), saved with onnx.save; loading returns the ModelProto."""

    name, framework, module, filename = "onnx", "onnx", "onnx", "model.onnx"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        onnx = self.import_framework(artifact)
        onnx.save(value, str(directory / self.filename))
        return {"opset": [{"domain": o.domain, "version": o.version} for o in value.opset_import]}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        return self.import_framework(artifact).load(str(path))


class MLflowKind(ArtifactKind):
    """An MLflow model directory (holding ``MLmodel``), kept byte for byte; loads with its flavor's loader.

    The value may be a directory or, with mlflow installed, a model URI (``runs:/...``,
    ``models:/...``) that mlflow downloads. ``flavor=`` picks a native flavor over pyfunc.
    """

    name, filename = "mlflow", "model"
    option_names = ("flavor",)

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        if isinstance(value, str) and _is_model_uri(value):
            with tempfile.TemporaryDirectory() as scratch:  # outside the staged bundle: only the copy is hashed
                return self.copy_file(_download_mlflow_model(value, Path(scratch), artifact), directory)
        if not isinstance(value, str | Path) or not Path(value).is_dir():
            raise ArtifactError(
                f"artifact '{artifact}' of kind mlflow takes an MLflow model directory or a model URI "
                f"(runs:/..., models:/...), got {value!r}"
            )
        return self.copy_file(Path(value), directory)

    def copy_file(self, source: Path, directory: Path) -> dict[str, Any]:
        meta = self.describe_file(source)
        shutil.copytree(source, directory / self.filename, symlinks=False)
        return meta

    def describe_file(self, source: Path) -> dict[str, Any]:
        from ._mlflow_model import describe_model_dir

        return describe_model_dir(source, self.options.get("flavor"), source.name)

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        from ._mlflow_model import load_model_dir

        return load_model_dir(path, meta, artifact)


def _is_model_uri(value: str) -> bool:
    """runs:/..., models:/..., s3://..., file:///... (a scheme of two letters or more: not C:/ on Windows)."""
    scheme, sep, _ = value.partition(":/")
    return bool(sep) and len(scheme) > 1 and scheme.isalnum() and not Path(value).is_dir()


def _download_mlflow_model(uri: str, scratch: Path, artifact: str) -> Path:
    """Fetch a model URI with mlflow's own API (it knows the tracking server and the registry)."""
    try:
        mlflow_artifacts = importlib.import_module("mlflow.artifacts")
    except ImportError:
        raise ArtifactError(f"artifact '{artifact}': {uri} is an MLflow model URI, which needs mlflow; pip install mlflow") from None
    try:
        return Path(mlflow_artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch)))
    except Exception as exc:  # mlflow raises its own MlflowException and the store's errors
        raise ArtifactError(f"artifact '{artifact}': mlflow could not download {uri}: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from exc


class FileKind(ArtifactKind):
    """A file, kept byte for byte; loading gives its ``Path``."""

    name = "file"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        source = Path(value)
        if not source.is_file():
            raise ArtifactError(f"artifact '{artifact}' of kind file: {source} is not a file")
        shutil.copyfile(source, directory / source.name)
        return {"filename": source.name}

    def copy_file(self, source: Path, directory: Path) -> dict[str, Any]:
        return self.save(source, directory, "")

    def describe_file(self, source: Path) -> dict[str, Any]:
        return {"filename": source.name}

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        return path


class DirKind(ArtifactKind):
    """A directory tree (a tokenizer, a saved_model); loading gives its ``Path``."""

    name = "dir"
    filename = "data"

    def save(self, value: Any, directory: Path, artifact: str) -> dict[str, Any]:
        source = Path(value)
        if not source.is_dir():
            raise ArtifactError(f"artifact '{artifact}' of kind dir: {source} is not a directory")
        shutil.copytree(source, directory / self.filename, symlinks=False)
        return {}

    def copy_file(self, source: Path, directory: Path) -> dict[str, Any]:
        return self.save(source, directory, "")

    def read(self, path: Path, meta: dict[str, Any], artifact: str) -> Any:
        return path


_KIND_CLASSES: dict[str, type[ArtifactKind]] = {
    cls.name: cls
    for cls in (
        PickleKind, JoblibKind, SklearnKind, XGBoostKind, LightGBMKind, TorchKind, ONNXKind, MLflowKind, FileKind, DirKind
    )
}


def artifact_kind(name: str, **options: Any) -> ArtifactKind:
    """A fresh handler for the kind called ``name``, with the options its ``Artifact`` declared."""
    try:
        return _KIND_CLASSES[name](**options)
    except KeyError:
        raise ArtifactError(f"unknown artifact kind {name!r}; choose one of {', '.join(KINDS)}") from None


def check_framework_version(kind: ArtifactKind, recorded: str | None, artifact: str) -> None:
    """Refuse a major version mismatch between save and load time; warn on a minor one."""
    if not kind.framework or not recorded:
        return
    installed = kind.framework_version()
    if installed is None:
        raise ArtifactError(
            f"artifact '{artifact}' was saved with {kind.framework} {recorded}, which is not installed; "
            f"pip install {kind.framework}=={recorded}"
        )
    saved_parts, installed_parts = recorded.split("."), installed.split(".")
    if saved_parts[0] != installed_parts[0]:
        raise ArtifactError(
            f"artifact '{artifact}' was saved with {kind.framework} {recorded} but {installed} is installed "
            f"(a different major version); pip install {kind.framework}=={recorded}, or rebuild the bundle"
        )
    if saved_parts[:2] != installed_parts[:2]:
        warnings.warn(
            f"artifact '{artifact}' was saved with {kind.framework} {recorded}; {installed} is installed",
            RuntimeWarning,
            stacklevel=2,
        )


def _is_zip_with(path: Path, member_suffix: str) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(member_suffix) for name in archive.namelist())
