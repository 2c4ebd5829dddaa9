"""``--model-dir``: serve a bundle's code with artifacts from another folder (SageMaker's /opt/ml/model).

The folder is an unpacked ``model.tar.gz`` written by ``bundle export sagemaker``::

    modelbundle-model.json     {"format_version": 1, "bundle": "NAME:VERSION", "service": "module:Class",
                                "artifacts": [artifact.json of each], "files": {path: "sha256:..."}}
    artifacts/<name>/...       as in the bundle
    blobs/...                  referenced weights, in the weights cache's layout (``weights/_shipped.py``)

So one image serves many model versions: the artifacts must have the bundle's
names and kinds (their framework versions are checked on load as usual), and
every file must match its digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..bundler import BundleManifest, OpenedBundle
from ..errors import ArtifactError, IntegrityError

#: the description at the root of model data (the exporter writes the same name)
MODEL_DATA_FILE = "modelbundle-model.json"
MODEL_DATA_FORMAT = 1


class ModelData(BaseModel):
    """``modelbundle-model.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    #: NAME:VERSION of the bundle the artifacts were exported from
    bundle: str
    service: str
    artifacts: list[dict[str, Any]]
    #: every file under artifacts/, by POSIX path: "sha256:<hex>"
    files: dict[str, str]


def model_dir_loader(path: Path, manifest: BundleManifest) -> Callable[[], dict[str, Any]]:
    """Check ``path`` against the bundle (now) and return the loader of its artifacts (run at setup)."""
    return OpenedBundle(path, model_dir_manifest(path, manifest)).artifact_loader()


def model_dir_manifest(path: Path, manifest: BundleManifest) -> BundleManifest:
    """The bundle's manifest with the model data's artifacts; ArtifactError or IntegrityError when they do not fit."""
    data = read_model_data(path)
    try:
        merged = BundleManifest.model_validate({**manifest.model_dump(mode="json"), "artifacts": data.artifacts})
    except ValidationError as exc:
        raise ArtifactError(f"{path / MODEL_DATA_FILE} describes its artifacts wrongly: {exc.errors()[0]['msg']}") from None
    want = {a.name: a.kind for a in manifest.artifacts}
    have = {a.name: a.kind for a in merged.artifacts}
    if want != have:
        raise ArtifactError(
            f"the model data in {path} (from {data.bundle}) holds {_describe(have)}, but {manifest.tag} needs "
            f"{_describe(want)}; export the model data from a bundle of the same service (bundle export sagemaker NAME:VERSION)"
        )
    _verify_files(path, data)
    return merged


def read_model_data(path: Path) -> ModelData:
    file = path / MODEL_DATA_FILE
    if not file.is_file():
        raise ArtifactError(
            f"{path} holds no {MODEL_DATA_FILE}, so it is not model data from `bundle export sagemaker` "
            "(a model.tar.gz of the bundle's artifacts); export one, or leave the folder empty to use the bundle's own artifacts"
        )
    try:
        data = ModelData.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        raise ArtifactError(f"{file} is not a modelbundle model data description: {exc.errors()[0]['msg']}") from None
    if data.format_version != MODEL_DATA_FORMAT:
        raise ArtifactError(f"{file} has format version {data.format_version}; this modelbundle reads {MODEL_DATA_FORMAT}: upgrade it")
    return data


def _verify_files(path: Path, data: ModelData) -> None:
    # artifacts/ and blobs/ (referenced weights): each file listed, and each listed file there and whole
    roots = [path / "artifacts", path / "blobs"]
    found = sorted(p.relative_to(path).as_posix() for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())
    extra = sorted(set(found) - set(data.files))
    if extra:
        raise IntegrityError(f"{path / extra[0]} is not listed in {MODEL_DATA_FILE}; the model data was changed after export")
    for name, digest in sorted(data.files.items()):
        file = path / name
        if not file.is_file():
            raise IntegrityError(f"{file} is missing from the model data ({MODEL_DATA_FILE} lists it)")
        if _sha256(file) != digest:
            raise IntegrityError(f"{file} does not match its digest in {MODEL_DATA_FILE}; the model data was changed after export")


def _describe(kinds: dict[str, str]) -> str:
    if not kinds:
        return "no artifacts"
    return ", ".join(f"'{name}' ({kind})" for name, kind in sorted(kinds.items()))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()
