"""Bundles: build them, keep them in the local store, verify and load them.

Also the one place that knows wheel platforms (``WheelPlatform``), runs pip
(``run_pip``, ``pip_compile``) and finds the wheels of a lock for a platform
(``WheelCache``, ``find_wheels``): every exporter calls these.
"""

from __future__ import annotations

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
from ._options import BuildOptions, resolve_build_options
from ._pip_settings import PipSettings, read_pip_settings
from ._platforms import LEGACY_MANYLINUX, WheelPlatform, manylinux_glibc, manylinux_platforms
from ._record import RECORD_FILE, file_digest, read_record, verify_record
from ._report import Reporter
from ._store import LocalStore, StoredBundle, default_home, parse_tag, read_bundle_dir
from ._wheel_cache import PREVIOUS_WHEELS_DIR, WheelCache, link_or_copy

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
