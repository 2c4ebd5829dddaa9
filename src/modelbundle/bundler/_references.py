"""A referenced artifact (``Artifact(..., uri=...)``) at build time: its ``ref`` in ``bundle.json``, nothing copied.

The digest comes from the declaration, else from the project's ``weights.lock``
(``bundle weights pin``), else, with ``--fetch-digest``, from streaming the URI.
The weights themselves are not fetched: serving does that, into the cache.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from ..errors import BuildError, ModelbundleError
from ._manifest import ArtifactInfo, ArtifactRef
from ._options import BuildOptions


def reference_info(name: str, declared: Any, options: BuildOptions, project_dir: Path, read: list[Path]) -> ArtifactInfo:
    """The manifest entry of referenced artifact ``name``; ``read`` gets the lock file (a pin change rebuilds)."""
    from .. import weights  # the fetching side, loaded only for bundles that reference weights

    lock_dir = Path(options.project_dir) if options.project_dir else project_dir
    read.append(lock_dir / "weights.lock")
    pinned = weights.read_weights_lock(lock_dir).get(declared.uri)
    try:
        ref = _resolve(name, declared, pinned, options.fetch_digest)
    except ModelbundleError as exc:
        if isinstance(exc, BuildError):
            raise
        raise BuildError(f"artifact '{name}': {exc}") from exc
    return ArtifactInfo(
        name=name, kind=declared.kind, python_version=platform.python_version(), meta={},
        ref=ArtifactRef.model_validate(ref.as_json()),
    )


def _resolve(name: str, declared: Any, pinned: Any, fetch_digest: bool) -> Any:
    from .. import weights

    wanted = declared.sha256
    if pinned is not None and pinned.kind != declared.kind:
        raise BuildError(f"artifact '{name}': weights.lock pins {declared.uri} as a {pinned.kind}, the class declares a {declared.kind}; run bundle weights pin")
    if pinned is not None and (wanted is None or wanted == pinned.sha256):
        return weights.WeightRef(name, declared.uri, pinned.sha256, pinned.size, pinned.kind, pinned.files)
    if declared.kind == "file" and wanted is not None:
        size = declared.size
        if size is None:  # one HEAD (or stat), not a download
            source = weights.open_source(declared.uri)
            try:
                size = source.size()
            finally:
                source.close()
        return weights.WeightRef(name, declared.uri, wanted, size, "file")
    if not fetch_digest:
        what = "its files' digests" if declared.kind == "dir" else "no sha256"
        raise BuildError(
            f"artifact '{name}' references {declared.uri} with {what}: declare Artifact({declared.kind!r}, uri=..., "
            "sha256=...), run bundle weights pin, or build with --fetch-digest"
        )
    ref = weights.describe(name, declared.uri, declared.kind)
    if wanted is not None and ref.sha256 != wanted:
        raise BuildError(f"artifact '{name}': {declared.uri} has sha256:{ref.sha256}, the class declares sha256:{wanted}")
    return ref


def pin_weights(options: BuildOptions) -> tuple[Path, list[Any]]:
    """``bundle weights pin``: hash (streaming) every URI the service's graph references; write ``weights.lock``.

    The lock goes beside pyproject.toml (the project folder); the references it pinned are returned.
    """
    from .. import weights
    from ..service_base import load_service, target_root
    from ._assemble import graph_artifacts

    if not options.service:
        raise BuildError("no service to pin: pass TARGET (module:Class or path/file.py:Class) or set service in [tool.modelbundle]")
    project_dir = Path(options.project_dir or Path.cwd())
    root, _module = target_root(options.service, project_dir)
    service_cls = load_service(options.service, root=root, fresh=True)
    refs = []
    for name, declared, _owner in graph_artifacts(service_cls):
        if declared.uri is None:
            continue
        try:
            ref = weights.describe(name, declared.uri, declared.kind)
        except ModelbundleError as exc:
            raise BuildError(f"artifact '{name}': {exc}") from exc
        if declared.sha256 is not None and declared.sha256 != ref.sha256:
            raise BuildError(f"artifact '{name}': {declared.uri} has sha256:{ref.sha256}, the class declares sha256:{declared.sha256}")
        refs.append(ref)
    if not refs:
        raise BuildError(f"{options.service} references no weights (Artifact('file', uri=...)): nothing to pin")
    return weights.write_weights_lock(project_dir, refs), refs
