"""Skip a build whose inputs have not changed since it was built: ``make``'s rule for bundles.

A build's result depends on its options, the Python environment, the files it
read (the service's sources, its artifacts, pyproject.toml, a requirements
file, pip's configuration) and the code it ran (the service's imports and
modelbundle itself). After a build, ``record`` keeps the size and mtime of every
one of those files, keyed by everything else; ``lookup`` finds the bundle again
when not one of them changed, without importing the service or locking again.

What a build reads without our knowing (a file the service opens at import
time, an environment variable it reads) is not watched: ``bundle build
--force`` builds again regardless.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .._version import __version__
from ..errors import ModelbundleError
from ..service_base import target_root
from . import _installed
from ._atomic import write_text_atomically
from ._options import PYPROJECT, BuildOptions
from ._pip_settings import pip_config_files
from ._store import LocalStore, StoredBundle

BUILDS_DIR = "builds"
#: environment variables that change what a build resolves or where it looks
_ENV_PREFIXES = ("PIP_", "UV_", "MODELBUNDLE_", "CONDA", "PYTHON", "VIRTUAL_ENV", "XDG_CONFIG", "SSL_CERT", "REQUESTS_CA")
_ENV_NAMES = ("HOME", "PATH")
IGNORE_FILE = ".bundleignore"

#: (size, mtime in ns) of a file, or None for a file that must still be missing
Stamp = tuple[int, int] | None


def entry_path(options: BuildOptions, store: LocalStore) -> Path | None:
    """Where the entry for these options, environment and settings lives (None: no cache here, under conda)."""
    if (Path(sys.prefix) / "conda-meta").is_dir():
        return None  # a conda environment changes in ways its site-packages do not show
    material = {
        "modelbundle": __version__,
        "python": [sys.executable, sys.version],
        "environment": _installed.fingerprint(),
        "options": options.model_dump(mode="json", exclude={"quiet"}),
        "cwd": os.getcwd(),
        "store": str(store.bundles.resolve()),
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES),
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]
    return store.cache / BUILDS_DIR / f"{key}.json"


def lookup(path: Path | None, options: BuildOptions, store: LocalStore) -> StoredBundle | None:
    """The bundle built from exactly these inputs (the entry at ``path``), if it is still in the store."""
    if path is None:
        return None
    try:
        entry = json.loads(path.read_text())
        watched: dict[str, Stamp] = {name: tuple(stamp) if stamp else None for name, stamp in entry["watched"].items()}
        tag = entry["tag"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no entry, or one written by another release: build
    if any(_stamp(Path(name)) != stamp for name, stamp in watched.items()):
        return None
    if options.include and sorted(entry.get("included", [])) != _included(options):
        return None  # a file now matches an --include glob, or no longer does
    try:
        return store.get(tag)
    except ModelbundleError:
        return None  # deleted since: build


def record(path: Path | None, options: BuildOptions, bundle: StoredBundle, read: Iterable[Path]) -> None:
    """Remember at ``path`` that these inputs built ``bundle``; ``read`` is every project file the build read."""
    if path is None:
        return
    files = {Path(p).resolve() for p in read} | set(_config_files(options)) | set(_loaded_code())
    entry = {
        "tag": bundle.tag,
        "included": _included(options) if options.include else [],
        "watched": {str(f): _stamp(f) for f in sorted(files)},
    }
    # a cache that cannot be written costs the next build its speed, nothing else
    with contextlib.suppress(OSError):
        write_text_atomically(path, json.dumps(entry, separators=(",", ":")))


def _stamp(path: Path) -> Stamp:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _config_files(options: BuildOptions) -> list[Path]:
    """Files whose appearance, change or removal changes a build: watched even while missing."""
    project = Path(options.project_dir or Path.cwd()).resolve()
    files = [project / PYPROJECT, project / IGNORE_FILE, Path.cwd().resolve() / PYPROJECT]
    files += pip_config_files(os.environ)  # uv is handed the same settings
    files += [Path(p).resolve() for p in options.find_links]  # a folder's mtime changes when a wheel is added
    if options.requirements:
        files.append(Path(options.requirements).resolve())
    return files


def _loaded_code() -> Iterable[Path]:
    """Every module file this process loaded (the service's imports), and modelbundle's own code.

    All of modelbundle, not only what the build imported: the bundle's lock pins a
    wheel of it, which a source install rebuilds whenever any file in it changes.
    """
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if name:
            yield Path(name)
    source = _installed.runtime_source_dir()
    if source is not None:
        package = source / "src" / "modelbundle"
        yield source / "pyproject.toml"
        yield package
        yield from (p for p in package.rglob("*") if "__pycache__" not in p.parts)


def _included(options: BuildOptions) -> list[str]:
    from ._ignore import IgnoreRules, glob_files

    root, _ = target_root(options.service or ":", Path(options.project_dir or Path.cwd()))
    return sorted(p.as_posix() for p in glob_files(root, options.include, IgnoreRules(root, options.exclude)))
