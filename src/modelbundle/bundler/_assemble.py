"""Assemble a bundle: service + artifacts + environment -> a versioned bundle in the local store.

Everything is written into a staging directory on the store's filesystem;
the version is a digest of the staged content; the directory is renamed into
place only when complete, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..adapters import artifact_kind
from ..errors import BuildError, ModelbundleError
from ..service_base import (
    Service,
    build_openapi,
    declared_artifacts,
    service_graph,
    split_target,
    target_root,
)
from . import _conda
from ._by_value import CapturedClass
from ._ignore import IgnoreRules, glob_files
from ._imports import ImportScan, scan_imports
from ._lock import lock_requirements
from ._manifest import (
    ARTIFACT_FILE,
    MANIFEST_FILE,
    APIInfo,
    ArtifactInfo,
    BuildInfo,
    BundleManifest,
    Dependencies,
    ServiceInfo,
    check_name,
    check_system_package,
    check_version,
)
from ._options import BuildOptions
from ._record import build_record, write_record
from ._references import reference_info
from ._report import Reporter
from ._requirements import (
    ResolvedRequirements,
    apply_explicit,
    artifact_requirements,
    infer_requirements,
    read_requirements_file,
)
from ._schemas import api_schemas
from ._secrets import SECRET_SCAN_LABEL, find_secrets, scan_label
from ._store import LocalStore, StoredBundle
from ._wheels import download_wheels

VERSION_DIGEST_CHARS = 12
OPENAPI_FILE = "openapi.json"


class Target:
    """Where the service lives: its import root, its module, its class (or the class captured by value)."""

    def __init__(self, spec: str, project_dir: Path, captured: CapturedClass | None = None) -> None:
        self.root, self.module = target_root(spec, project_dir)
        self.class_name = split_target(spec)[1]
        self.spec = spec
        self.captured = captured

    def scan(self) -> ImportScan:
        return self.captured.scan if self.captured else scan_imports(self.root, self.module)


def assemble(
    service_cls: type[Service], target: Target, values: dict[str, Any], options: BuildOptions, store: LocalStore | None,
    read: list[Path],
) -> StoredBundle:
    """Build into the store; every project file read is appended to ``read``."""
    reporter = Reporter(options.quiet)
    store = store or LocalStore()
    name = _bundle_name(options.name, service_cls)
    if options.version is not None:
        _checked(check_version, options.version)
    system_packages = sorted({_checked(check_system_package, package) for package in options.system_packages})
    if options.conda_pack and _conda.conda_prefix() is None:
        raise BuildError("--conda-pack needs a conda environment; this Python is not in one")
    with store.staging() as staging:
        rules = IgnoreRules(target.root, options.exclude)
        scan = target.scan()
        copied = _copy_sources(target, scan.local_files, options, rules, staging, reporter)
        read += [target.root / relative for relative in copied]
        secrets = find_secrets(staging / "src", copied)
        if secrets:
            reporter.warn(f"these files look like secrets and will be in the bundle: {', '.join(secrets)} (exclude them in .bundleignore)")
        if target.captured:
            target.captured.write(staging / "src")
            reporter.info(f"{service_cls.__name__} is defined in __main__: captured by value (src/{target.module}.pkl)")
        artifacts = _save_artifacts(service_cls, target, values, options, staging / "artifacts", reporter, read)
        resolved = _requirements(scan.required, scan.optional, artifacts, options, reporter, cache_dir=store.cache)
        dependencies = _freeze_environment(resolved, options, store, staging / "env", name, reporter)

        manifest = BundleManifest(
            name=name,
            version=options.version or "0",
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            service=f"{target.module}:{target.class_name}",
            service_name=service_cls.name,
            apis=_api_infos(service_cls),
            python_version=platform.python_version(),
            dependencies=dependencies,
            artifacts=artifacts,
            # a fact about this build, not the user's to set: the secret check ran, and what it found
            labels=dict(sorted({**options.labels, SECRET_SCAN_LABEL: scan_label(secrets)}.items())),
            system_packages=system_packages,
            services=_service_infos(service_cls, target),
            build=BuildInfo(
                modelbundle_version=__version__,
                python_implementation=platform.python_implementation(),
                platform=f"{sys.platform}-{platform.machine()}",
                conda=_conda.conda_prefix() is not None,
            ),
        )
        content = build_record(staging)  # every file but bundle.json and openapi.json, hashed once
        if options.version is None:
            manifest = manifest.model_copy(update={"version": _content_version(content, manifest)})
        # written once the version is known, which it carries; the version need not digest it, as it
        # follows from the code and the modelbundle version that the version digests already
        openapi = build_openapi(service_cls, version=manifest.version)
        (staging / OPENAPI_FILE).write_text(json.dumps(openapi, indent=2, sort_keys=True) + "\n")
        (staging / MANIFEST_FILE).write_bytes(manifest.dump())
        write_record(staging, known=content)
        bundle, created = store.commit(staging, name, manifest.version)
    if not created:
        reporter.info(f"{bundle.tag} is already in the store (same content)")
    return bundle


def _bundle_name(given: str | None, service_cls: type[Service]) -> str:
    name = given or service_cls.name.lower()
    return _checked(check_name, name)


def _checked(check: Any, value: str) -> str:
    try:
        return str(check(value))
    except ValueError as exc:
        raise BuildError(str(exc)) from None


def _copy_sources(
    target: Target, local_files: set[Path], options: BuildOptions, rules: IgnoreRules, staging: Path, reporter: Reporter
) -> list[Path]:
    """Copy the service's own files into src/; the files copied, relative to the project."""
    outside: set[Path] = set()
    files = {f for f in local_files if not rules.ignored(f)} | glob_files(target.root, options.include, rules, outside)
    if outside:
        shown = ", ".join(sorted(p.as_posix() for p in outside)[:10])
        reporter.warn(f"--include left out {len(outside)} file(s) reached through links that leave {target.root}: {shown}")
    for relative in sorted(files):
        destination = staging / "src" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target.root / relative, destination)
    reporter.info(f"sources: {len(files)} file(s) from {target.root}")
    return sorted(files)


def _save_artifacts(
    service_cls: type[Service], target: Target, values: dict[str, Any], options: BuildOptions, directory: Path,
    reporter: Reporter, read: list[Path],
) -> list[ArtifactInfo]:
    infos = []
    for name, declared, owner in graph_artifacts(service_cls):
        kind = artifact_kind(declared.kind, **declared.options)
        folder = directory / name
        folder.mkdir(parents=True)
        try:
            if declared.uri is not None and name not in values:
                info = reference_info(name, declared, options, target.root, read)
                (folder / ARTIFACT_FILE).write_text(json.dumps(info.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
                infos.append(info)
                continue
            if name in values:
                meta = kind.save(values[name], folder, name)
            else:
                path = options.artifacts.get(name) or declared.path
                if path is None:
                    raise BuildError(
                        f"artifact '{name}' of {owner.__name__} has no value: bind it with "
                        f"{service_cls.__name__}.pack({name}=...).save(), or declare Artifact({declared.kind!r}, path=...)"
                    )
                source = Path(path) if Path(path).is_absolute() else _module_dir(owner, target) / path
                if not source.exists():
                    raise BuildError(f"artifact '{name}': {source} does not exist")
                meta = kind.copy_file(source, folder)
                read += _files_under(source)
        except ModelbundleError:
            raise
        except Exception as exc:
            raise BuildError(f"artifact '{name}' ({declared.kind}) could not be saved: {type(exc).__name__}: {exc}") from exc
        info = ArtifactInfo(
            name=name,
            kind=declared.kind,
            framework=kind.framework or None,
            framework_version=kind.framework_version(),
            python_version=platform.python_version(),
            meta=meta,
        )
        (folder / ARTIFACT_FILE).write_text(json.dumps(info.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        infos.append(info)
    if infos:
        reporter.info("artifacts: " + ", ".join(f"{i.name} ({i.kind}{', by reference' if i.ref else ''})" for i in infos))
    return infos


def graph_artifacts(service_cls: type[Service]) -> list[tuple[str, Any, type[Service]]]:
    """(bundle name, declaration, declaring class) of every artifact of the graph: the entry's by
    their own name, a dependency's as ``<service>.<name>`` (a service name is unique in the graph)."""
    graph = service_graph(service_cls)
    found = []
    for node in graph.services:
        prefix = "" if node is graph.entry else node.name + "."
        found += [(prefix + name, declared, node.cls) for name, declared in declared_artifacts(node.cls).items()]
    return found


def _module_dir(owner: type[Service], target: Target) -> Path:
    """Where a ``path=`` artifact of ``owner`` lives: beside its module's file (the project root for the entry)."""
    module_file = getattr(sys.modules.get(owner.__module__), "__file__", None)
    if owner.__module__ == target.module or module_file is None:
        return target.root
    return Path(module_file).resolve().parent


def _service_infos(service_cls: type[Service], target: Target) -> list[ServiceInfo]:
    """The graph for bundle.json; empty (and so not written) for a service with no dependencies."""
    graph = service_graph(service_cls)
    if not graph.composed:
        return []
    infos = []
    for node in graph.services:
        module = target.module if node.cls.__module__ == service_cls.__module__ else node.cls.__module__
        infos.append(
            ServiceInfo(
                name=node.name, entry=f"{module}:{node.cls.__qualname__}",
                apis=_api_infos(node.cls), dependencies=dict(node.dependencies),
            )
        )
    return infos


def _files_under(path: Path) -> list[Path]:
    """A file, or a folder with every file and folder in it (a folder's mtime changes when an entry comes or goes)."""
    if not path.is_dir():
        return [path]
    return [path, *path.rglob("*")]


def _requirements(
    required: set[str], optional: set[str], artifacts: list[ArtifactInfo], options: BuildOptions, reporter: Reporter,
    *, cache_dir: Path | None = None,
) -> tuple[ResolvedRequirements, str]:
    kinds = [a.kind for a in artifacts]
    if options.requirements:
        resolved = infer_requirements([], [], kinds, cache_dir)
        source = "requirements-file"
    else:
        resolved = infer_requirements(required, optional, kinds, cache_dir)
        source = "inferred"
    # the user's pins win, then the models' own (an MLflow model's requirements.txt), then inference
    for artifact, lines in artifact_requirements(artifacts):
        apply_explicit(resolved, lines, f"the requirements of artifact '{artifact}'")
    if options.requirements:
        apply_explicit(resolved, read_requirements_file(options.requirements), options.requirements)
    apply_explicit(resolved, options.python_packages, "--python-package")
    if resolved.unresolved:
        reporter.warn(
            "no installed distribution provides these imports, so they are not in the bundle's requirements: "
            + ", ".join(resolved.unresolved) + " (install them, or add them with --python-package)"
        )
    reporter.info("requirements: " + ", ".join(resolved.lines()))
    if resolved.optional:
        reporter.info("optional (under try/except ImportError, not required): " + ", ".join(resolved.optional))
    return resolved, source


def _freeze_environment(
    resolved_and_source: tuple[ResolvedRequirements, str], options: BuildOptions, store: LocalStore,
    env_dir: Path, name: str, reporter: Reporter,
) -> Dependencies:
    resolved, source = resolved_and_source
    env_dir.mkdir()
    lines = resolved.lines()
    (env_dir / "requirements.in").write_text("\n".join(lines) + "\n")
    cache = store.cache
    lock = lock_requirements(
        lines, cache, find_links=[Path(p) for p in options.find_links], offline=options.offline,
        resolver=options.resolver, reporter=reporter,
    )
    (env_dir / "requirements.lock").write_text(lock)
    (env_dir / "python_version").write_text(platform.python_version() + "\n")
    prefix = _conda.conda_prefix()
    if prefix is not None:
        (env_dir / "conda.yaml").write_text(_conda.conda_yaml(prefix, name, lines))
        if options.conda_pack:
            with reporter.step("packing the conda environment with conda-pack..."):
                _conda.conda_pack(prefix, env_dir / _conda.CONDA_PACK_FILE)
    if options.vendor_wheels:
        wheels = download_wheels(
            env_dir / "requirements.lock", env_dir / "wheels", cache / "wheels", reporter, offline=options.offline
        )
        reporter.info(f"vendored {len(wheels)} wheels into env/wheels")
    locked = sum(1 for line in lock.splitlines() if line and not line[0].isspace() and "==" in line)
    return Dependencies(
        requirements=lines, optional=resolved.optional, unresolved=resolved.unresolved, source=source, locked=locked
    )


def _api_infos(service_cls: type[Service]) -> list[APIInfo]:
    infos = []
    for api in service_cls.__apis__.values():
        input_schema, output_schema = api_schemas(api)
        infos.append(
            APIInfo(
                name=api.name, route=api.route, batchable=api.batchable, max_batch_size=api.max_batch_size,
                max_latency_ms=api.max_latency_ms, batch_dim=api.batch_dim,
                input_schema=input_schema, output_schema=output_schema, doc=api.doc,
                streaming=api.streaming, websocket=api.websocket,
            )
        )
    return infos


def _content_version(record: str, manifest: BundleManifest) -> str:
    """A digest of every staged file (their RECORD lines) and of the manifest minus its time and version."""
    digest = hashlib.sha256(record.encode())
    stable = manifest.model_dump(mode="json", exclude={"created_at", "version"})
    digest.update(json.dumps(stable, sort_keys=True).encode())
    return digest.hexdigest()[:VERSION_DIGEST_CHARS]
