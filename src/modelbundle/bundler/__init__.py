"""Bundles: build them, keep them in the local store, verify and load them."""

from __future__ import annotations

from ._archive import export_archive, import_archive
from ._build import build, build_packed
from ._env import create_env
from ._load import OpenedBundle, dev_artifact_loader, module_file, open_bundle, open_bundle_dir
from ._manifest import MANIFEST_FILE, BundleManifest
from ._options import BuildOptions, resolve_build_options
from ._record import RECORD_FILE, file_digest, read_record, verify_record
from ._report import Reporter
from ._store import LocalStore, StoredBundle, default_home, parse_tag, read_bundle_dir

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
