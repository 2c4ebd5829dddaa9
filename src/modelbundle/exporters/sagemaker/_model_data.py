"""``bundle export sagemaker``: a bundle's artifacts as SageMaker model data (``model.tar.gz``).

SageMaker unpacks the archive named by ``ModelDataUrl`` into /opt/ml/model, and
the ``--target sagemaker`` image serves artifacts from there when it is not
empty: one image, many model versions. The layout (read by
``runtime/_model_dir.py``, which checks names, kinds and digests):

    modelbundle-model.json   format version, source bundle, service, artifacts, file digests
    artifacts/<name>/...     as in the bundle (artifact.json and the model files)
    blobs/sha256/<hex>       referenced weights (Artifact(uri=...)), in the weights cache's layout,
    blobs/dirs/<digest>/...  so the server reads them in place and fetches nothing at start

The archive is deterministic: sorted entries, root-owned, one mtime, gzip
without a name or time, so the same artifacts give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ...bundler import Reporter, StoredBundle, file_digest, read_record, verify_record
from ...errors import ExportError

MODEL_DATA_FILE = "modelbundle-model.json"
MODEL_DATA_FORMAT = 1
ARCHIVE_NAME = "model.tar.gz"
#: 1980-01-01, as in the images' layers
_MTIME = 315532800


@dataclass(frozen=True)
class ModelDataArchive:
    path: Path
    files: int
    size: int
    sha256: str


def export_model_data(bundle: StoredBundle, output_dir: Path, reporter: Reporter | None = None) -> ModelDataArchive:
    """Write ``output_dir/model.tar.gz`` with the bundle's artifacts (RECORD checked first)."""
    reporter = reporter or Reporter(quiet=True)
    verify_record(bundle.path)
    record = read_record(bundle.path)
    files = sorted(path for path in record if path.startswith("artifacts/"))
    weights = _weight_files(bundle)  # archive path -> (cached file, sha256), fetched into the cache first
    manifest = bundle.manifest
    description = {
        "format_version": MODEL_DATA_FORMAT,
        "bundle": manifest.tag,
        "service": manifest.service,
        "artifacts": [info.model_dump(mode="json") for info in manifest.artifacts],
        "files": {path: "sha256:" + record[path][0] for path in files}
        | {path: "sha256:" + digest for path, (_, digest) in weights.items()},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / ARCHIVE_NAME
    partial = output_dir / f".{ARCHIVE_NAME}.{os.getpid()}.partial"
    try:
        with (
            reporter.step(f"writing {target}..."),
            open(partial, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add(tar, MODEL_DATA_FILE, (json.dumps(description, indent=2, sort_keys=True) + "\n").encode())
            for directory in _parents([*files, *weights]):
                _add(tar, directory, None)
            for path in files:
                _add(tar, path, (bundle.path / path).read_bytes())
            for path, (source, _) in sorted(weights.items()):
                _add_file(tar, path, source)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    # streamed: the weights may be gigabytes
    return ModelDataArchive(target, len(files) + len(weights), target.stat().st_size, file_digest(target))


def _weight_files(bundle: StoredBundle) -> dict[str, tuple[Path, str]]:
    """The referenced weights' archive paths (the cache's layout under blobs/) -> their verified cached file and digest."""
    from ...weights import cached_path, ensure, references, shipped_path

    refs = references(bundle.manifest)
    if not refs:
        return {}
    ensure(refs)
    found: dict[str, tuple[Path, str]] = {}
    for ref in refs:
        shipped = shipped_path(Path(), ref)  # the archive's layout is the one the server reads in place
        pairs = [(shipped, ref.sha256)] if ref.kind == "file" else [(shipped / file.path, file.sha256) for file in ref.files]
        for path, digest in pairs:
            source = cached_path(digest)
            if source is None:  # ensure put it there: only a concurrent clean-up gets here
                raise ExportError(f"the weights blob sha256:{digest} left the cache during the export; run it again")
            found[path.as_posix()] = (source, digest)
    return found


def _parents(files: list[str]) -> list[str]:
    folders = {str(Path(path).parents[i]) for path in files for i in range(len(Path(path).parents) - 1)}
    return sorted(folders)


def _add_file(tar: tarfile.TarFile, name: str, source: Path) -> None:
    """A big file, streamed from disk into the archive."""
    info = _info(name)
    info.size, info.mode = source.stat().st_size, 0o644
    with open(source, "rb") as handle:
        tar.addfile(info, handle)


def _info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add(tar: tarfile.TarFile, name: str, content: bytes | None) -> None:
    info = _info(name)
    if content is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(content), 0o644
        tar.addfile(info, io.BytesIO(content))
