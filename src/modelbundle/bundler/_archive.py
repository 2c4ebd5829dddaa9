"""``bundle export archive`` / ``bundle import``: a bundle as one .tar.gz.

Import refuses absolute paths, ``..``, links, devices, a path held twice and
any file that RECORD does not list or whose size or digest differs, all before
it writes a byte (``_archive_read``); it unpacks into staging, and only then
commits, so a bad archive leaves the store untouched.
RECORD travels inside the archive: this checks integrity (corruption, a
truncated copy, an unsafe layout), not trust. Serving a bundle unpickles its
artifacts, so import bundles only from sources you trust.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import zlib
from pathlib import Path

from pydantic import ValidationError

from ..errors import IntegrityError, StoreError
from ._archive_read import extract, open_stream, scan
from ._manifest import MANIFEST_FILE, BundleManifest, validation_summary
from ._record import RECORD_FILE, bundle_files, verify_record
from ._store import LocalStore, StoredBundle

#: fixed metadata so the same bundle always exports to the same bytes
_MTIME = 0


def export_archive(bundle: StoredBundle, output: Path) -> Path:
    """Write the bundle as a deterministic tar.gz (sorted entries, fixed owners and times)."""
    verify_record(bundle.path)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with open(partial, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=_MTIME) as zipped, tarfile.open(
            fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT
        ) as tar:
            for relative in [*bundle_files(bundle.path), Path(RECORD_FILE)]:
                _add_file(tar, bundle.path / relative, relative.as_posix())
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return output


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mtime = _MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "rb") as f:
        tar.addfile(info, f)


def import_archive(archive: Path, store: LocalStore | None = None) -> tuple[StoredBundle, bool]:
    """Check, unpack and commit a bundle archive. Returns (bundle, created)."""
    store = store or LocalStore()
    if not archive.is_file():
        raise StoreError(f"no such archive: {archive}")
    with store.staging() as staging:
        try:
            with open_stream(archive) as tar:
                inventory = scan(tar, archive)
            _check_free_space(staging, inventory.declared_size, archive)
            with open_stream(archive) as tar:
                extract(tar, archive, inventory, staging)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise IntegrityError(f"{archive} is not a readable bundle archive: {reason}") from None
        try:
            manifest = BundleManifest.model_validate_json((staging / MANIFEST_FILE).read_bytes())
        except OSError as exc:
            raise IntegrityError(f"{archive}: no readable bundle.json ({exc.strerror})") from None
        except ValidationError as exc:
            raise IntegrityError(f"{archive}: bundle.json is not a valid manifest: {validation_summary(exc)}") from None
        return store.commit(staging, manifest.name, manifest.version)


#: room left beside a bundle on the store's filesystem, so an import never fills it to the last byte
_SPARE_BYTES = 64 * 1024 * 1024


def _check_free_space(staging: Path, needed: int, archive: Path) -> None:
    free = shutil.disk_usage(staging).free
    if needed + _SPARE_BYTES > free:
        raise StoreError(
            f"{archive}: the bundle needs {needed / 1e6:.1f} MB and {staging.parent} has {free / 1e6:.1f} MB free; "
            "nothing was written"
        )
