"""``bundle containerize``: a stored bundle -> build context -> image (-> registry), for one ``--target``."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..._version import __version__
from ...bundler import RECORD_FILE, LocalStore, Reporter, StoredBundle
from ._context import (
    normalize_tree,
    prepare_context_dir,
    write_bundle_layers,
    write_context_tar,
    write_dockerfile,
    write_target_files,
)
from ._dockerfile import (
    BUNDLE_DIR,
    CODE_LAYER,
    DATA_LAYER,
    DEFAULT_PORT,
    LOCK_FILE,
    VENV_DIR,
    WHEELS_DIR,
    HealthCheck,
    ImageRecipe,
)
from ._engine import BuiltImage, build_image, connect, ensure_base_image, push_image
from ._extras import image_lock_text, resolve_extras
from ._platform import DEFAULT_PLATFORM, ImagePlatform
from ._targets import DEFAULT_TARGET, ImageTarget, image_target
from ._wheels import WheelCache, gather_wheels

LABEL_PREFIX = "ai.modelbundle"


@dataclass(frozen=True)
class ContainerizeOptions:
    tag: str | None = None
    base_image: str | None = None
    platform: str = DEFAULT_PLATFORM
    no_cache: bool = False
    push: bool = False
    #: read wheels only from the cache and the bundle, never from an index
    offline: bool = False
    #: docker, sagemaker, lambda-image (see _targets.py)
    target: str = DEFAULT_TARGET
    #: let the target's requirements move pins the bundle's lock has only transitively (in the image, not the bundle)
    relax_transitive_pins: bool = False
    #: a hashed lock for what the target adds: its pins constrain the additions, its hashes allow their wheels
    target_lock: Path | None = None


@dataclass(frozen=True)
class ContainerizeResult:
    image: BuiltImage
    seconds: float
    #: the registry's manifest digest, with --push
    pushed_digest: str | None = None


def default_tag(bundle: StoredBundle, target: str = DEFAULT_TARGET) -> str:
    """NAME:VERSION, and NAME:VERSION-TARGET for the other targets (so images of one bundle do not overwrite each other)."""
    suffix = "" if target == DEFAULT_TARGET else f"-{target}"
    return f"{bundle.manifest.name}:{bundle.manifest.version}{suffix}"


def default_base_image(bundle: StoredBundle) -> str:
    return f"python:{bundle.manifest.python_minor}-slim"


def bundle_digest(bundle: StoredBundle) -> str:
    """The sha256 of the bundle's RECORD, which names every file's sha256: one digest for the whole bundle."""
    return "sha256:" + hashlib.sha256((bundle.path / RECORD_FILE).read_bytes()).hexdigest()


def server_recipe(bundle: StoredBundle, base_image: str) -> ImageRecipe:
    """The default image: ``bundle serve /opt/bundle`` as a non-root user, healthy once /readyz says so."""
    return ImageRecipe(
        base_image=base_image,
        python_version=bundle.manifest.python_minor,
        entrypoint=[f"{VENV_DIR}/bin/bundle", "serve", BUNDLE_DIR],
        env={"MODELBUNDLE_HOST": "0.0.0.0", "MODELBUNDLE_PORT": str(DEFAULT_PORT), "MODELBUNDLE_WORKERS": "1"},
        port=DEFAULT_PORT,
        healthcheck=HealthCheck([f"{VENV_DIR}/bin/python", "-m", "modelbundle.healthcheck"]),
        labels=image_labels(bundle, base_image),
    )


#: the default target: ``bundle serve /opt/bundle`` on port 3000 as a non-root user
DOCKER_TARGET = ImageTarget("docker", server_recipe)


def image_labels(bundle: StoredBundle, base_image: str) -> dict[str, str]:
    manifest = bundle.manifest
    labels = {
        "org.opencontainers.image.title": manifest.name,
        "org.opencontainers.image.version": manifest.version,
        "org.opencontainers.image.created": manifest.created_at,
        "org.opencontainers.image.description": f"{manifest.service_name} ({manifest.service}), served by modelbundle",
        "org.opencontainers.image.base.name": base_image,
        f"{LABEL_PREFIX}.bundle.name": manifest.name,
        f"{LABEL_PREFIX}.bundle.version": manifest.version,
        f"{LABEL_PREFIX}.bundle.digest": bundle_digest(bundle),
        f"{LABEL_PREFIX}.bundle.apis": ",".join(api.name for api in manifest.apis),
        f"{LABEL_PREFIX}.version": __version__,
    }
    labels.update({f"{LABEL_PREFIX}.label.{key}": value for key, value in manifest.labels.items()})
    return labels


def write_build_context(
    bundle: StoredBundle,
    directory: Path,
    target: ImageTarget,
    base_image: str,
    platform: ImagePlatform,
    cache: WheelCache,
    reporter: Reporter,
    *,
    offline: bool = False,
    relax_transitive_pins: bool = False,
    target_lock: Path | None = None,
) -> Path:
    """Write the whole context into ``directory``: Dockerfile, image lock, wheels, the bundle's layers and the target's files.

    Every wheel (the lock's and the target's extras) is found before anything is built;
    a missing one fails here, naming the packages.
    """
    bundle_lock = bundle.path / "env" / "requirements.lock"
    extras = resolve_extras(
        target.extra_requirements, bundle_lock, platform, cache, reporter, direct=bundle.manifest.dependencies.requirements,
        relax_transitive_pins=relax_transitive_pins, target_lock=target_lock, offline=offline,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_FILE).write_text(image_lock_text(bundle_lock, extras, target.name))
    gather_wheels(
        directory / LOCK_FILE, platform, directory / WHEELS_DIR, cache, reporter,
        vendored=bundle.path / "env" / "wheels", offline=offline,
    )
    has_data = write_bundle_layers(bundle, directory)
    write_target_files(target.files(bundle), directory)
    write_dockerfile(replace(target.recipe(bundle, base_image), has_data_layer=has_data), directory)
    return directory


def export_context(bundle: StoredBundle, directory: Path, options: ContainerizeOptions, store: LocalStore, reporter: Reporter) -> Path:
    """``--context-only``: the context as a folder, for buildx, kaniko or CI (mtimes fixed on disk)."""
    target = image_target(options.target)
    platform = ImagePlatform.parse(options.platform, bundle.manifest.python_minor)
    base_image = options.base_image or default_base_image(bundle)
    directory = prepare_context_dir(directory)
    try:
        write_build_context(
            bundle, directory, target, base_image, platform, _wheel_cache(store), reporter, offline=options.offline,
            relax_transitive_pins=options.relax_transitive_pins, target_lock=options.target_lock,
        )
        for layer in (DATA_LAYER, CODE_LAYER):
            if (directory / layer).is_dir():
                normalize_tree(directory / layer)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # no half-written context
        raise
    return directory


def containerize(bundle: StoredBundle, options: ContainerizeOptions, store: LocalStore, reporter: Reporter) -> ContainerizeResult:
    """Build the bundle's image for ``options.target`` with the Docker engine (and push it with ``options.push``)."""
    started = time.perf_counter()
    target = image_target(options.target)
    platform = ImagePlatform.parse(options.platform, bundle.manifest.python_minor)
    base_image = options.base_image or default_base_image(bundle)
    tag = options.tag or default_tag(bundle, target.name)
    client = connect()
    ensure_base_image(client, base_image, platform, reporter)
    store.home.mkdir(parents=True, exist_ok=True)
    with store.staging() as staging, tempfile.TemporaryFile(dir=staging.parent) as context_tar:
        context = write_build_context(
            bundle, staging / "context", target, base_image, platform, _wheel_cache(store), reporter, offline=options.offline,
            relax_transitive_pins=options.relax_transitive_pins, target_lock=options.target_lock,
        )
        write_context_tar(context, context_tar)
        reporter.info(f"building {tag} ({target.name}) from {base_image} for {platform.docker} (offline build, no network)")
        image = build_image(client, context_tar, tag, reporter, no_cache=options.no_cache)
    pushed = push_image(client, tag, reporter) if options.push else None
    return ContainerizeResult(image, time.perf_counter() - started, pushed)


def _wheel_cache(store: LocalStore) -> WheelCache:
    return WheelCache(store.cache / "wheels")

