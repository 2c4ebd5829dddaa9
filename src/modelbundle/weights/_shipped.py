"""Weights shipped beside a bundle's artifacts, in the cache's layout: SageMaker's model data carries them.

A folder of model data (``bundle export sagemaker``) holds ``blobs/sha256/<hex>``
for each referenced file and ``blobs/dirs/<digest>/<path>`` for each referenced
directory, as the cache does. The folder is read-only (SageMaker mounts it), so
it is read in place, never written; the model data's own check has verified
every file against its digest before the loader gets here.
"""

from __future__ import annotations

from pathlib import Path

from ._ref import WeightRef

SHIPPED_DIR = "blobs"


def shipped_path(root: Path, ref: WeightRef) -> Path:
    """Where ``root`` (a model data folder) holds ``ref``: a file for "file", a directory for "dir"."""
    if ref.kind == "file":
        return root / SHIPPED_DIR / "sha256" / ref.sha256
    return root / SHIPPED_DIR / "dirs" / ref.sha256


def shipped_paths(root: Path, refs: list[WeightRef]) -> dict[str, Path] | None:
    """artifact name -> its shipped copy under ``root``, when ``root`` holds every one of ``refs``; else None."""
    paths = {}
    for ref in refs:
        path = shipped_path(root, ref)
        present = path.is_file() and path.stat().st_size == ref.size if ref.kind == "file" else all(
            (path / file.path).is_file() for file in ref.files
        )
        if not present:
            return None
        paths[ref.artifact] = path
    return paths
