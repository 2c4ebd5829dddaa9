"""What is installed in the running environment, read fast: pins, and which distribution provides each import.

``importlib.metadata`` parses every distribution's METADATA (and RECORD, for
``packages_distributions``) on each call: a second or more per build in a venv
of a hundred packages. The ``*.dist-info`` folder names already say name and
version, so pins come from a directory listing; the import map is computed by
importlib.metadata once per environment and kept on disk, under a fingerprint
of that listing (which changes with every install, upgrade or removal).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from packaging.utils import canonicalize_name

from ._atomic import write_text_atomically

#: the distribution name of modelbundle itself
RUNTIME_DISTRIBUTION = "modelbundle"

#: the on-disk cache of import maps, under the build cache
IMPORT_MAP_DIR = "import-maps"


@dataclass(frozen=True)
class Installed:
    """One distribution found on ``sys.path``: its name as its folder spells it, and its version."""

    name: str
    version: str
    folder: str


def installed() -> list[Installed]:
    """Every distribution importlib.metadata would find, first on ``sys.path`` first; odd layouts by reading them."""
    found: dict[str, Installed] = {}
    for entry in _metadata_folders():
        key = canonicalize_name(entry.name)
        found.setdefault(key, entry)  # as importlib: the first on sys.path shadows the rest
    return list(found.values())


def installed_pins() -> dict[str, str]:
    """Canonical name -> ``name==version`` of every installed distribution."""
    return {canonicalize_name(d.name): f"{canonicalize_name(d.name)}=={d.version}" for d in installed()}


def fingerprint() -> str:
    """Changes whenever a distribution is installed, upgraded or removed (folder names and their mtimes)."""
    digest = hashlib.sha256(sys.version.encode())
    for entry in _metadata_folders():
        try:
            mtime = os.stat(entry.folder).st_mtime_ns
        except OSError:
            mtime = 0
        digest.update(f"{entry.folder}\0{mtime}\n".encode())
    return digest.hexdigest()[:32]


def import_map(cache_dir: Path | None = None) -> Mapping[str, list[str]]:
    """``importlib.metadata.packages_distributions()``, from the on-disk cache when the environment is unchanged."""
    key = fingerprint()
    return _import_map(key, str(cache_dir) if cache_dir is not None else "")


@lru_cache(maxsize=4)
def _import_map(key: str, cache_dir: str) -> Mapping[str, list[str]]:
    path = Path(cache_dir) / IMPORT_MAP_DIR / f"{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):  # a damaged cache file: compute it again
            cached = None
        if isinstance(cached, dict):
            return cached
    computed = {name: sorted(set(dists)) for name, dists in importlib.metadata.packages_distributions().items()}
    if path is not None:
        with contextlib.suppress(OSError):  # a cache: a read-only home costs time, never the build
            write_text_atomically(path, json.dumps(computed, sort_keys=True))
    return computed


def _metadata_folders() -> Iterator[Installed]:
    for directory in sys.path or ["."]:
        try:
            with os.scandir(directory or ".") as entries:
                names = sorted(e.name for e in entries if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:  # not a folder (a zip on sys.path) or gone
            continue
        for folder in names:
            entry = _parse(os.path.join(directory or ".", folder))
            if entry is not None:
                yield entry


def _parse(folder: str) -> Installed | None:
    stem = os.path.basename(folder).rsplit(".", 1)[0]
    parts = stem.split("-")
    # name-version(.dist-info) or name-version-pyX.Y(.egg-info); a version starts with a digit
    # (an old installer may have left a "-" in the name: read those)
    if len(parts) >= 2 and parts[0] and parts[1][:1].isdigit():
        return Installed(parts[0], parts[1], folder)
    try:  # a develop-mode egg-info without a version in its name: read it
        dist = importlib.metadata.PathDistribution(Path(folder))
        name, version = dist.metadata["Name"], dist.version
    except Exception:
        return None
    return Installed(name, version, folder) if name and version else None


def runtime_source_dir() -> Path | None:
    """The project folder modelbundle was installed from, if it was installed from source."""
    try:
        dist = importlib.metadata.distribution(RUNTIME_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        direct_url = dist.read_text("direct_url.json")
        if direct_url:
            url = json.loads(direct_url).get("url", "")
            if url.startswith("file://") and (Path(url[7:]) / "pyproject.toml").is_file():
                return Path(url[7:])
    here = Path(__file__).resolve().parents[3]  # src/modelbundle/bundler/_installed.py -> project
    return here if (here / "pyproject.toml").is_file() and (here / "src" / "modelbundle").is_dir() else None
