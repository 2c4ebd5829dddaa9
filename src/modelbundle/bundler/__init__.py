"""Bundles: build them, keep them in the local store, verify and load them.

The names load on first use (PEP 562): `bundle serve` opens and verifies a bundle
without importing the build side (locking, archives, environments), which is a
tenth of its start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._archive import export_archive, import_archive
    from ._build import build, build_packed
    from ._env import create_env
    from ._load import OpenedBundle, dev_artifact_loader, module_file, open_bundle, open_bundle_dir
    from ._manifest import MANIFEST_FILE, BundleManifest
    from ._options import BuildOptions, resolve_build_options
    from ._record import RECORD_FILE, file_digest, read_record, verify_record
    from ._report import Reporter
    from ._store import LocalStore, StoredBundle, default_home, parse_tag, read_bundle_dir

#: each public name -> the module that defines it
_HOMES = {
    "export_archive": "_archive",
    "import_archive": "_archive",
    "build": "_build",
    "build_packed": "_build",
    "create_env": "_env",
    "OpenedBundle": "_load",
    "dev_artifact_loader": "_load",
    "module_file": "_load",
    "open_bundle": "_load",
    "open_bundle_dir": "_load",
    "MANIFEST_FILE": "_manifest",
    "BundleManifest": "_manifest",
    "BuildOptions": "_options",
    "resolve_build_options": "_options",
    "RECORD_FILE": "_record",
    "file_digest": "_record",
    "read_record": "_record",
    "verify_record": "_record",
    "Reporter": "_report",
    "LocalStore": "_store",
    "StoredBundle": "_store",
    "default_home": "_store",
    "parse_tag": "_store",
    "read_bundle_dir": "_store",
}

__all__ = [
    "MANIFEST_FILE",
    "RECORD_FILE",
    "BuildOptions",
    "BundleManifest",
    "LocalStore",
    "OpenedBundle",
    "Reporter",
    "StoredBundle",
    "build",
    "build_packed",
    "create_env",
    "default_home",
    "dev_artifact_loader",
    "export_archive",
    "file_digest",
    "import_archive",
    "module_file",
    "open_bundle",
    "open_bundle_dir",
    "parse_tag",
    "read_bundle_dir",
    "read_record",
    "resolve_build_options",
    "verify_record",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
