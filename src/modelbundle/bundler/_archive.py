"""``bundle export archive`` / ``bundle import``: a bundle as one .tar.gz.

Import refuses absolute paths, ``..``, links, devices and any file that RECORD
does not list or whose size or digest differs; it unpacks into staging,
verifies, and only then commits, so a bad archive leaves the store untouched.
RECORD travels inside the archive: this checks integrity (corruption, a
truncated copy, an unsafe layout), not trust. Serving a bundle unpickles its
artifacts, so import bundles only from sources you trust.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from ..errors import IntegrityError, StoreError
from ._manifest import MANIFEST_FILE, BundleManifest
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
    """Unpack, check and commit a bundle archive. Returns (bundle, created)."""
    store = store or LocalStore()
    if not archive.is_file():
        raise StoreError(f"no such archive: {archive}")
    with store.staging() as staging:
        try:
            with tarfile.open(archive, mode="r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member, archive)
                _check_listed(tar, members, archive)
                for member in members:
                    if member.isfile():
                        _extract(tar, member, staging)
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # tarfile lists every method tried
            if isinstance(exc, tarfile.ReadError):
                reason = "not a tar or tar.gz file"
            raise IntegrityError(f"{archive} is not a readable bundle archive: {reason}") from None
        verify_record(staging)
        try:
            manifest = BundleManifest.model_validate_json((staging / MANIFEST_FILE).read_bytes())
        except (OSError, ValidationError) as exc:
            raise IntegrityError(f"{archive}: bundle.json is not a valid manifest: {exc}") from None
        return store.commit(staging, manifest.name, manifest.version)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise IntegrityError(f"{archive}: refusing member {name!r}: absolute paths and '..' are not allowed")
    if member.issym() or member.islnk():
        raise IntegrityError(f"{archive}: refusing member {name!r}: links are not allowed in a bundle")
    if not (member.isfile() or member.isdir()):
        raise IntegrityError(f"{archive}: refusing member {name!r}: only regular files and folders are allowed")


def _check_listed(tar: tarfile.TarFile, members: list[tarfile.TarInfo], archive: Path) -> None:
    """Every file must be in RECORD (read from the archive before anything is written)."""
    record_member = next((m for m in members if PurePosixPath(m.name).as_posix() == RECORD_FILE), None)
    handle = tar.extractfile(record_member) if record_member is not None and record_member.isfile() else None
    if handle is None:
        raise IntegrityError(f"{archive}: no RECORD file; this is not a bundle archive")
    listed: dict[str, int] = {}
    for line in io.TextIOWrapper(handle, "utf-8").read().splitlines():
        path, _, rest = line.rpartition(",sha256=")
        size = rest.rpartition(",")[2]
        if not path or not size.isdigit():
            raise IntegrityError(f"{archive}: RECORD line {line[:80]!r} is not 'path,sha256=<hex>,size'")
        listed[path] = int(size)
    for member in members:
        name = PurePosixPath(member.name).as_posix()
        if not member.isfile() or name == RECORD_FILE:
            continue
        if name not in listed:
            raise IntegrityError(f"{archive}: {name} is not listed in the bundle's RECORD")
        # checked before anything is written, so a lying archive cannot fill the disk
        if member.size != listed[name]:
            raise IntegrityError(f"{archive}: {name} holds {member.size} bytes; RECORD says {listed[name]}")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> None:
    destination = staging / PurePosixPath(member.name)
    if not destination.resolve().is_relative_to(staging.resolve()):
        raise IntegrityError(f"refusing member {member.name!r}: it would be written outside the bundle")
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None
    with open(destination, "wb") as out:
        while chunk := source.read(1024 * 1024):
            out.write(chunk)


