"""Bundles: build them, keep them in the local store, verify and load them.

Also the one place that knows wheel platforms (``WheelPlatform``), runs pip
(``run_pip``, ``pip_compile``) and finds the wheels of a lock for a platform
(``WheelCache``, ``find_wheels``): every exporter calls these.

The names load on first use (PEP 562): `bundle serve` opens and verifies a bundle
without importing the build side (locking, fetching, archives, environments).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._archive import export_archive, import_archive
    from ._build import build, build_packed
    from ._env import create_env
    from ._fetch import FETCH_WORKERS, FoundWheels, MissingWheel, find_wheels
    from ._installer import (
        FAST_FAIL_PIP_ARGS,
        last_lines,
        missing_distribution,
        pip_compile,
        pip_env,
        run_pip,
    )
    from ._load import OpenedBundle, dev_artifact_loader, module_file, open_bundle, open_bundle_dir
    from ._lockfile import LockedDistribution, read_lock
    from ._manifest import MANIFEST_FILE, BundleManifest
    from ._mlflow_service import build_mlflow
    from ._options import BuildOptions, resolve_build_options
    from ._pip_settings import PipSettings, read_pip_settings
    from ._platforms import LEGACY_MANYLINUX, WheelPlatform, manylinux_glibc, manylinux_platforms
    from ._record import RECORD_FILE, file_digest, read_record, verify_record
    from ._references import pin_weights
    from ._report import Reporter
    from ._store import LocalStore, StoredBundle, default_home, parse_tag, read_bundle_dir
    from ._wheel_cache import PREVIOUS_WHEELS_DIR, WheelCache, link_or_copy

#: each public name -> the module that defines it
_HOMES = {
    "export_archive": "_archive",
    "import_archive": "_archive",
    "build": "_build",
    "build_packed": "_build",
    "create_env": "_env",
    "FETCH_WORKERS": "_fetch",
    "FoundWheels": "_fetch",
    "MissingWheel": "_fetch",
    "find_wheels": "_fetch",
    "FAST_FAIL_PIP_ARGS": "_installer",
    "last_lines": "_installer",
    "missing_distribution": "_installer",
    "pip_compile": "_installer",
    "pip_env": "_installer",
    "run_pip": "_installer",
    "OpenedBundle": "_load",
    "dev_artifact_loader": "_load",
    "module_file": "_load",
    "open_bundle": "_load",
    "open_bundle_dir": "_load",
    "LockedDistribution": "_lockfile",
    "read_lock": "_lockfile",
    "BundleManifest": "_manifest",
    "MANIFEST_FILE": "_manifest",
    "build_mlflow": "_mlflow_service",
    "BuildOptions": "_options",
    "resolve_build_options": "_options",
    "PipSettings": "_pip_settings",
    "read_pip_settings": "_pip_settings",
    "LEGACY_MANYLINUX": "_platforms",
    "WheelPlatform": "_platforms",
    "manylinux_glibc": "_platforms",
    "manylinux_platforms": "_platforms",
    "pin_weights": "_references",
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
    "PREVIOUS_WHEELS_DIR": "_wheel_cache",
    "WheelCache": "_wheel_cache",
    "link_or_copy": "_wheel_cache",
}

__all__ = [
    "FAST_FAIL_PIP_ARGS",
    "FETCH_WORKERS",
    "LEGACY_MANYLINUX",
    "MANIFEST_FILE",
    "PREVIOUS_WHEELS_DIR",
    "RECORD_FILE",
    "BuildOptions",
    "BundleManifest",
    "FoundWheels",
    "LocalStore",
    "LockedDistribution",
    "MissingWheel",
    "OpenedBundle",
    "PipSettings",
    "Reporter",
    "StoredBundle",
    "WheelCache",
    "WheelPlatform",
    "build",
    "build_mlflow",
    "build_packed",
    "create_env",
    "default_home",
    "dev_artifact_loader",
    "export_archive",
    "file_digest",
    "find_wheels",
    "import_archive",
    "last_lines",
    "link_or_copy",
    "manylinux_glibc",
    "manylinux_platforms",
    "missing_distribution",
    "module_file",
    "open_bundle",
    "open_bundle_dir",
    "parse_tag",
    "pin_weights",
    "pip_compile",
    "pip_env",
    "read_bundle_dir",
    "read_lock",
    "read_pip_settings",
    "read_record",
    "resolve_build_options",
    "run_pip",
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
