"""The local store: ``$MODELBUNDLE_HOME/bundles/<name>/<version>/``, written atomically under a lock."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import BundleNotFound, IntegrityError, StoreError
from ._manifest import MANIFEST_FILE, BundleManifest, check_name, check_version, validation_summary
from ._record import RECORD_FILE, read_record
from ._staging import STAGING_PREFIX, claim_staging, release_staging, remove_stale_staging

HOME_ENV = "MODELBUNDLE_HOME"
#: wheels and locks can be shared by several homes (CI, tests) with this
CACHE_ENV = "MODELBUNDLE_CACHE_DIR"
DEFAULT_HOME = Path("~/.modelbundle")


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


@dataclass(frozen=True)
class StoredBundle:
    """A bundle in the store: where it is and what its manifest says."""

    path: Path
    manifest: BundleManifest

    @property
    def tag(self) -> str:
        return self.manifest.tag

    def size(self) -> int:
        return sum(size for _, size in read_record(self.path).values())


def parse_tag(ref: str) -> tuple[str, str | None]:
    """``name`` or ``name:version`` -> (name, version or None)."""
    name, _, version = ref.partition(":")
    if not name or (":" in ref and not version):
        raise StoreError(f"{ref!r} is not a bundle reference; use NAME or NAME:VERSION")
    try:  # also keeps references from reaching outside the store (../..)
        check_name(name)
        if version:
            check_version(version)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    return name, version or None


class LocalStore:
    """Bundles on this machine. Safe under concurrent builds: commits take a file lock."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = (home or default_home()).expanduser().resolve()
        self.bundles = self.home / "bundles"
        self._tmp = self.home / "tmp"
        self.cache = Path(os.environ.get(CACHE_ENV) or self.home / "cache").expanduser().resolve()

    # -- writing ---------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """The store's lock; whoever takes it first clears what killed builds left in tmp/."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                remove_stale_staging(self._tmp)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory on the store's filesystem; removed unless committed.

        Its ``.live`` file stays locked while this process uses it: a directory whose
        file nobody holds was left by a killed process, and the next store lock removes it.
        """
        with self.lock():  # made and claimed in one step, so no cleaner sees it unclaimed
            self._tmp.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self._tmp))
            claim = claim_staging(directory)
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            release_staging(directory, claim)

    def commit(self, staged: Path, name: str, version: str) -> tuple[StoredBundle, bool]:
        """Move a complete staged bundle into place. Returns (bundle, False) if it was already there."""
        target = self.bundles / name / version
        with self.lock():
            if target.exists():
                if _same_content(target, staged):
                    return self._read(target), False
                raise StoreError(
                    f"{name}:{version} already exists with different content; "
                    f"delete it (bundle delete {name}:{version}) or choose another --version"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.chmod(0o755)  # mkdtemp made it private; a shared store and non-root servers must read it
            os.rename(staged, target)  # atomic: readers see no bundle or a whole one
        return self._read(target), True

    def delete(self, ref: str) -> StoredBundle:
        bundle = self.get(ref)
        with self.lock():
            self._tmp.mkdir(parents=True, exist_ok=True)
            trash = Path(tempfile.mkdtemp(prefix="deleted-", dir=self._tmp))
            os.rename(bundle.path, trash / "bundle")  # vanish at once, then clean up
            shutil.rmtree(trash, ignore_errors=True)
            parent = bundle.path.parent
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        return bundle

    # -- reading ---------------------------------------------------------------------
    def list(self, name: str | None = None) -> list[StoredBundle]:
        """All bundles (or all versions of ``name``), oldest first."""
        if not self.bundles.is_dir():
            return []
        names = [name] if name else sorted(p.name for p in self.bundles.iterdir() if p.is_dir())
        found = []
        for bundle_name in names:
            directory = self.bundles / bundle_name
            if not directory.is_dir():
                continue
            for version_dir in directory.iterdir():
                if (version_dir / MANIFEST_FILE).is_file():
                    found.append(self._read(version_dir))
        # created_at has whole seconds: two builds within one second are ordered by when their manifest was written
        return sorted(
            found,
            key=lambda b: (b.manifest.name, b.manifest.created_at, (b.path / MANIFEST_FILE).stat().st_mtime_ns, b.manifest.version),
        )

    def get(self, ref: str) -> StoredBundle:
        """The bundle ``name:version``, or the latest ``name``."""
        name, version = parse_tag(ref)
        if version is not None:
            path = self.bundles / name / version
            if (path / MANIFEST_FILE).is_file():
                return self._read(path)
        versions = self.list(name)
        if version is None and versions:
            return versions[-1]
        known = ", ".join(b.manifest.version for b in versions[-5:])
        hint = f"; versions of {name}: {known}" if known else f"; no bundle named {name!r} (see bundle list)"
        raise BundleNotFound(f"no bundle {ref} in {self.bundles}{hint}")

    def _read(self, path: Path) -> StoredBundle:
        return read_bundle_dir(path)


def read_bundle_dir(path: Path) -> StoredBundle:
    """The bundle in folder ``path`` (in a store or not, e.g. /opt/bundle in an image); not verified."""
    try:
        manifest = BundleManifest.model_validate_json((path / MANIFEST_FILE).read_bytes())
    except OSError as exc:
        raise IntegrityError(f"{path / MANIFEST_FILE} cannot be read: {exc.strerror}") from None
    except ValidationError as exc:
        raise IntegrityError(f"{path / MANIFEST_FILE} is not a valid bundle manifest: {validation_summary(exc)}") from None
    return StoredBundle(path, manifest)


def _same_content(a: Path, b: Path) -> bool:
    """Equal files, and equal manifests apart from created_at."""

    def files(root: Path) -> list[str]:
        return [line for line in (root / RECORD_FILE).read_text().splitlines() if not line.startswith(MANIFEST_FILE + ",")]

    def manifest(root: Path) -> dict[str, object]:
        data: dict[str, object] = json.loads((root / MANIFEST_FILE).read_bytes())
        data.pop("created_at", None)
        return data

    return files(a) == files(b) and manifest(a) == manifest(b)
