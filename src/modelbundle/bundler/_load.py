"""Open a stored bundle for serving: verify it, import its service, load its artifacts."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from ..adapters import artifact_kind, check_framework_version
from ..errors import ArtifactError
from ..service_base import Service, declared_artifacts, load_service, service_graph
from ._manifest import ArtifactInfo, BundleManifest
from ._record import verify_record
from ._store import LocalStore, StoredBundle, read_bundle_dir

ArtifactLoader = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class OpenedBundle:
    """A verified bundle, ready to serve."""

    path: Path
    manifest: BundleManifest

    def service_class(self) -> type[Service]:
        src = self.path / "src"
        _import_without_writing(src)
        return load_service(self.manifest.service, root=src)

    def artifact_loader(self, service: str | None = None) -> ArtifactLoader:
        """Loads the bundle's artifacts; with ``service``, only those of that service of its graph
        (a service served alone neither loads nor fetches the weights of the others)."""
        infos = self.manifest.artifacts
        if service is not None:
            infos = [info for info in infos if self.manifest.artifact_owner(info.name) == service]
        return lambda: load_bundle_artifacts(self.path, infos)

    def environment_mismatches(self) -> list[str]:
        return environment_mismatches(self.path / "env" / "requirements.lock")


class _NoBytecodeWrites(importlib.machinery.SourceFileLoader):
    """Loads a bundle's modules from source, and never writes their bytecode (see ``_import_without_writing``)."""

    def set_data(self, path: str, data: Any, *, _mode: int = 0o666) -> None:
        return None


def _import_without_writing(src: Path) -> None:
    """Imports from the bundle's ``src`` (now or later, subpackages too) leave no ``__pycache__`` in it.

    A bundle is immutable: RECORD would refuse it at its next use. Only this folder is
    affected; installed packages keep reading and writing their own bytecode.
    """
    root = str(src.resolve())
    loaders = [
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (_NoBytecodeWrites, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    ]

    def finder(path: str) -> importlib.machinery.FileFinder:
        if path != root and not path.startswith(root + os.sep):
            raise ImportError(path)  # not the bundle's: the next hook
        return importlib.machinery.FileFinder(path, *loaders)

    sys.path_hooks.insert(0, finder)
    sys.path_importer_cache.clear()  # finders made before the hook would still write


def open_bundle(ref: str, store: LocalStore | None = None) -> OpenedBundle:
    """Find ``name[:version]`` in the store and check every file against RECORD."""
    return _verified((store or LocalStore()).get(ref))


def open_bundle_dir(path: Path) -> OpenedBundle:
    """The bundle in folder ``path`` (outside any store, e.g. /opt/bundle in an image), checked against RECORD."""
    return _verified(read_bundle_dir(path))


def _verified(stored: StoredBundle) -> OpenedBundle:
    verify_record(stored.path)
    return OpenedBundle(stored.path, stored.manifest)


def load_bundle_artifacts(path: Path, infos: list[ArtifactInfo]) -> dict[str, Any]:
    referenced = _referenced_paths(path, infos)
    loaded = {}
    for info in infos:
        kind = artifact_kind(info.kind)
        check_framework_version(kind, info.framework_version, info.name)
        with _loading(info.name):
            if info.name in referenced:  # weights by reference: the verified copy in the cache
                loaded[info.name] = kind.read(referenced[info.name], info.meta, info.name)
            else:
                loaded[info.name] = kind.load(path / "artifacts" / info.name, info.meta, info.name)
    return loaded


def _referenced_paths(path: Path, infos: list[ArtifactInfo]) -> dict[str, Path]:
    """Fetch (on first need) and verify the bundle's referenced weights; artifact name -> local path.

    Model data that ships them (SageMaker's /opt/ml/model, checked against its digests) is read in place.
    """
    if not any(info.ref is not None for info in infos):
        return {}
    from .. import weights  # the fetching side, loaded only for bundles that reference weights

    refs = [weights.WeightRef.from_json(info.name, info.ref.model_dump()) for info in infos if info.ref is not None]
    return weights.shipped_paths(path, refs) or weights.ensure(refs)


def dev_artifact_loader(service_cls: type[Service], source_file: str | None) -> ArtifactLoader:
    """Artifacts declared with ``path=`` load from beside the service file (serving a module directly)."""

    def load() -> dict[str, Any]:
        loaded = {}
        graph = service_graph(service_cls)
        for node in graph.services:  # a dependency's artifacts load beside its own module, as <service>.<name>
            own_file = source_file if node is graph.entry else module_file(node.cls)
            base = Path(own_file).resolve().parent if own_file else Path.cwd()
            prefix = "" if node is graph.entry else node.name + "."
            for name, declared in declared_artifacts(node.cls).items():
                if declared.path is None:
                    continue  # unbound until built; reading it raises a clear ArtifactError
                path = base / declared.path
                if not path.exists():
                    raise ArtifactError(f"artifact '{name}' of {node.cls.__name__}: {path} does not exist")
                kind = artifact_kind(declared.kind, **declared.options)
                with _loading(name):
                    loaded[prefix + name] = kind.read(path, kind.describe_file(path), name)
        return loaded

    return load


@contextmanager
def _loading(name: str) -> Iterator[None]:
    """Report any failure while loading artifact ``name`` as an ArtifactError naming it."""
    try:
        yield
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"artifact '{name}' could not be loaded: {type(exc).__name__}: {exc}") from exc


def environment_mismatches(lock_file: Path) -> list[str]:
    """Locked distributions that are missing or at another version in the running environment."""
    if not lock_file.is_file():
        return []
    problems = []
    for line in lock_file.read_text().splitlines():
        if not line or line[0].isspace() or line.startswith("#") or "==" not in line:
            continue
        name, _, version = line.split(" ", 1)[0].partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} (not installed; the lock has {version})")
            continue
        if not _same_version(installed, version):
            problems.append(f"{name} {installed} (the lock has {version})")
    return problems


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def module_file(service_cls: type[Service]) -> str | None:
    return getattr(sys.modules.get(service_cls.__module__), "__file__", None)
