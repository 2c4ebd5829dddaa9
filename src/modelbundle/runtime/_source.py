"""What ``bundle serve TARGET`` serves: a module's Service (dev mode), a stored bundle or a bundle folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundler import (
    MANIFEST_FILE,
    BundleManifest,
    LocalStore,
    OpenedBundle,
    StoredBundle,
    dev_artifact_loader,
    module_file,
    open_bundle,
    open_bundle_dir,
    parse_tag,
    read_bundle_dir,
)
from ..errors import BundleNotFound, ImportTargetError, StoreError
from ..service_base import Service, is_file_target, load_service

logger = logging.getLogger("modelbundle.server")


@dataclass(frozen=True)
class ServiceSource:
    service_cls: type[Service]
    load_artifacts: Callable[[], dict[str, Any]]
    #: what is served, for logs: "bundle iris:3f2a..." or "module service:Iris"
    origin: str
    #: the target pinned down for worker processes: a bundle's exact NAME:VERSION, so
    #: every worker serves the bundle the parent verified, even if a newer one lands
    pinned_target: str
    #: the bundle's manifest (None when serving code)
    manifest: BundleManifest | None = None
    #: a bundle's loader of one service's artifacts alone, by service name (None when serving code)
    service_artifacts: Callable[[str], Callable[[], dict[str, Any]]] | None = None

    @property
    def version(self) -> str | None:
        """The bundle's version (None when serving code)."""
        return self.manifest.version if self.manifest is not None else None


def resolve_source(target: str, *, verify: bool = True) -> ServiceSource:
    """``path/file.py[:Class]`` and ``module:Class`` import code; ``NAME[:VERSION]`` opens a stored bundle,
    and a folder holding a bundle.json (``/opt/bundle`` in an image) opens that bundle.

    A stored bundle wins over a module of the same name; the log says which was served.
    ``verify=False`` skips the RECORD check (workers of a parent that already checked).
    """
    folder = Path(target)
    if (folder / MANIFEST_FILE).is_file():
        folder = folder.resolve()
        bundle = open_bundle_dir(folder) if verify else _unverified(read_bundle_dir(folder))
        return _bundle_source(bundle, verify, pinned=str(folder))
    # a bundle may be called "x.py": NAME is a file only when there is such a file
    code = is_file_target(target) and (":" in target or folder.is_file())
    if not code and _in_store(target):
        store = LocalStore()
        bundle = open_bundle(target, store) if verify else _unverified(store.get(target))
        return _bundle_source(bundle, verify, pinned=bundle.manifest.tag)
    if ":" not in target and not is_file_target(target):  # a bare NAME can only be a bundle, and there is none of that name
        raise BundleNotFound(
            f"no bundle named {target!r} in the local store (see bundle list); "
            "to serve code, give module:Class, path/to/file.py:Class or path/to/file.py"
        )
    try:
        service_cls = load_service(target)
    except ImportTargetError as exc:
        if is_file_target(target) or "no module named" not in str(exc):
            raise
        raise ImportTargetError(f"{exc}, and no bundle {target} in the local store (see bundle list)") from None
    loader = dev_artifact_loader(service_cls, module_file(service_cls))
    return ServiceSource(service_cls, loader, f"module {target}", target)


def _bundle_source(bundle: OpenedBundle, verified: bool, pinned: str) -> ServiceSource:
    tag = bundle.manifest.tag
    if verified:
        mismatches = bundle.environment_mismatches()
        if mismatches:
            logger.warning(
                "this environment does not match the bundle's requirements.lock: %s "
                "(bundle env create %s DIR makes one that does)", "; ".join(mismatches[:10]), tag,
            )
    return ServiceSource(
        bundle.service_class(), bundle.artifact_loader(), f"bundle {tag}", pinned, bundle.manifest, bundle.artifact_loader
    )


def _unverified(stored: StoredBundle) -> OpenedBundle:
    return OpenedBundle(stored.path, stored.manifest)


def _in_store(target: str) -> bool:
    """True when the store has bundles of that name (a missing version then gets BundleNotFound)."""
    try:
        name, _version = parse_tag(target)
    except StoreError:
        return False
    return (LocalStore().bundles / name).is_dir()
