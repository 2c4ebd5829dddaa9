"""The build context: a Dockerfile, the wheels, and the bundle split into a data and a code layer.

The context is a plain folder (``--context-only`` hands it to buildx, kaniko or
CI as is). For our own builds it is streamed to the engine as a tar we write,
with one owner, one mtime and normalized modes, so that nothing of this host
(umask, checkout time, user) reaches a layer.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from ...bundler import RECORD_FILE, StoredBundle, read_record
from ...errors import ExportError
from ._dockerfile import (
    BUNDLE_DIR,
    CODE_LAYER,
    DATA_LAYER,
    SOURCE_DATE_EPOCH,
)

#: bundle paths that change rarely and weigh much: the data layer; the rest is the code layer
_DATA_PREFIXES = ("artifacts/", "env/wheels/", "env/conda-env.tar.gz")


def is_data_file(path: str) -> bool:
    return path.startswith(_DATA_PREFIXES)


def prepare_context_dir(directory: Path) -> Path:
    """A new or empty folder for the context; refuses to mix it with other files."""
    directory = directory.resolve()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(f"{directory} exists and is not an empty folder; choose a new folder for the build context")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_bundle_layers(bundle: StoredBundle, context: Path) -> bool:
    """Copy the bundle into ``data/`` and ``code/`` roots (as /opt/bundle); True if the data layer has files."""
    record = read_record(bundle.path)
    has_data = False
    target_root = BUNDLE_DIR.lstrip("/")
    for path in sorted([*record, RECORD_FILE]):
        layer = DATA_LAYER if is_data_file(path) else CODE_LAYER
        has_data = has_data or layer == DATA_LAYER
        target = context / layer / target_root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.path / path, target)
    (context / CODE_LAYER / target_root).mkdir(parents=True, exist_ok=True)
    return has_data


def write_target_files(files: Mapping[str, bytes], context: Path) -> None:
    """A target's own files (e.g. a Lambda image's handler module), into the code layer at their image paths."""
    for path, content in sorted(files.items()):
        if not path.startswith("/") or path.rstrip("/").startswith(BUNDLE_DIR):
            raise ExportError(f"a target file must have an absolute path outside {BUNDLE_DIR}: {path}")
        target = context / CODE_LAYER / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def normalize_tree(root: Path) -> None:
    """Fixed mtimes and modes on disk, for builders that read the folder itself (--context-only)."""
    for path in sorted(_walk(root), reverse=True):  # children before their folders
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)


def write_context_tar(root: Path, out: IO[bytes]) -> None:
    """The context as an uncompressed tar: sorted, root-owned, fixed mtime, normalized modes."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(_walk(root)):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = SOURCE_DATE_EPOCH
            info.mode = 0o755 if info.isdir() else 0o644
            info.pax_headers = {}
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    out.seek(0)


def _walk(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(directory)
        for name in dirs:
            yield base / name
        for name in sorted(files):
            yield base / name
