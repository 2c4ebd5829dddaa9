"""``bundle containerize``: a stored bundle -> build context -> image (-> registry), for one ``--target``.

A build is two engine builds, so that the venv outlives the builder stage that
made it. First the *venv image* (``modelbundle-venv:KEY``): the base image plus
the venv layer, where KEY is a digest of everything that decides that layer
(the builder stage, the image's lock, the platform); it is built only when the
engine lacks it, and every target and bundle with that lock reuses it. Then the
image itself: the bundle's data and code layers and the target's settings, on
the venv image. The builder stage's images are removed after the first build
(``--keep-builder`` keeps and tags them); the venv image is the build cache,
and it shares its layers with every image built on it, so it costs no space of
its own. A build whose image exists already (the ``ai.modelbundle.image.key``
label: the digest of the venv image's KEY, the final stage and the bundle's
files) only tags it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..._version import __version__
from ...bundler import RECORD_FILE, LocalStore, Reporter, StoredBundle, read_record
from ._context import (
    is_data_file,
    normalize_tree,
    prepare_context_dir,
    write_bundle_layers,
    write_context_tar,
    write_target_files,
)
from ._dockerfile import (
    BUNDLE_DIR,
    CODE_LAYER,
    DATA_LAYER,
    DEBS_DIR,
    DEFAULT_PORT,
    LOCK_FILE,
    VENV_DIR,
    WHEELS_DIR,
    HealthCheck,
    ImageRecipe,
    render_dockerfile,
    render_final_dockerfile,
    render_venv_dockerfile,
)
from ._engine import (
    Build,
    BuildStep,
    BuiltImage,
    ImageBuildError,
    build_image,
    connect,
    ensure_base_image,
    find_image,
    find_labelled,
    push_image,
    remove_made_images,
    remove_unused_image,
    split_reference,
    tag_image,
)
from ._extras import image_lock_text, resolve_extras
from ._platform import DEFAULT_PLATFORM, ImagePlatform
from ._system_packages import FetchedDebs, fetch_debs, read_base_release
from ._targets import DEFAULT_TARGET, ImageTarget, image_target
from ._weights import WEIGHTS_DIR, WEIGHTS_HOME, ImageWeights, plan_weights, write_weight_layers
from ._wheels import WheelCache, gather_wheels

LABEL_PREFIX = "ai.modelbundle"
#: on every image containerize builds: the digest of what decides it (see the module's docstring)
IMAGE_KEY_LABEL = f"{LABEL_PREFIX}.image.key"
#: on every image containerize builds: its --target (docker, sagemaker, ...), so a deploy can refuse the wrong kind
IMAGE_TARGET_LABEL = f"{LABEL_PREFIX}.image.target"
#: "baked" or "fetch": what the image does with its bundle's referenced weights (absent: it references none)
IMAGE_WEIGHTS_LABEL = f"{LABEL_PREFIX}.image.weights"
#: the repository of venv images (the base image plus one bundle lock's venv), tagged by their key
VENV_REPOSITORY = "modelbundle-venv"


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
    #: keep the builder stage's images (tagged TAG-builder) instead of removing them after the build
    keep_builder: bool = False
    #: referenced weights: "baked" into layers, "fetch"ed at start, or None: baked up to BAKE_LIMIT in total
    weights: str | None = None


@dataclass(frozen=True)
class ContainerizeResult:
    image: BuiltImage
    seconds: float
    #: the registry's manifest digest, with --push
    pushed_digest: str | None = None
    #: the venv image the image was built on (modelbundle-venv:KEY)
    venv_image: str = ""
    #: how the venv came about: built, reused (the venv image existed), or "image reused" (the whole image existed: only tagged)
    venv: Literal["built", "reused", "image reused"] = "built"
    #: with --keep-builder: the tag of the builder stage's last image (None when no builder ran)
    builder_tag: str | None = None


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
        # a composed bundle's image serves its whole graph, or one service of it (MODELBUNDLE_SERVICE / --service)
        **({f"{LABEL_PREFIX}.bundle.services": ",".join(info.name for info in manifest.services)} if manifest.services else {}),
        f"{LABEL_PREFIX}.version": __version__,
    }
    labels.update({f"{LABEL_PREFIX}.label.{key}": value for key, value in manifest.labels.items()})
    return labels


@dataclass(frozen=True)
class _Plan:
    """What a build of one bundle for one target consists of, decided before any file is copied."""

    lock_text: str
    recipe: ImageRecipe  # with has_data_layer and the image key label
    files: Mapping[str, bytes]
    venv_key: str
    #: the system packages' .deb files for the builder stage
    debs: FetchedDebs
    weights: ImageWeights

    @property
    def venv_image(self) -> str:
        return f"{VENV_REPOSITORY}:{self.venv_key[:32]}"

    @property
    def image_key(self) -> str:
        return self.recipe.labels[IMAGE_KEY_LABEL]


def _plan(
    bundle: StoredBundle, target: ImageTarget, base_image: str, platform: ImagePlatform, cache: WheelCache,
    reporter: Reporter, options: ContainerizeOptions, debs: FetchedDebs,
) -> _Plan:
    """The image lock (the target's extras resolved against the bundle's lock), the recipe and the two keys."""
    bundle_lock = bundle.path / "env" / "requirements.lock"
    extras = resolve_extras(
        target.extra_requirements, bundle_lock, platform, cache, reporter, direct=bundle.manifest.dependencies.requirements,
        relax_transitive_pins=options.relax_transitive_pins, target_lock=options.target_lock, offline=options.offline,
    )
    lock_text = image_lock_text(bundle_lock, extras, target.name)
    python = bundle.manifest.python_minor
    has_debs = bool(debs.files)
    venv_parts: list[Any] = ["venv", render_venv_dockerfile(base_image, python, has_debs=has_debs), lock_text, platform.docker]
    if has_debs:  # only then: the keys of venvs without system packages stay what they were
        venv_parts.append(debs.digests())
    venv_key = _digest(venv_parts)
    has_data = any(is_data_file(path) for path in read_record(bundle.path))
    recipe = target.recipe(bundle, base_image)
    recipe = replace(recipe, has_data_layer=has_data, has_debs=has_debs, labels={**recipe.labels, IMAGE_TARGET_LABEL: target.name})
    weights = plan_weights(bundle, options.weights)
    if weights.mode is not None:
        recipe = replace(
            recipe, weight_layers=weights.baked, env={**recipe.env, "MODELBUNDLE_HOME": WEIGHTS_HOME},
            labels={**recipe.labels, IMAGE_WEIGHTS_LABEL: weights.mode},  # read by bundle export kubernetes
        )
    files = target.files(bundle)
    plan = _Plan(lock_text, recipe, files, venv_key, debs, weights)
    image_key = _digest([
        "image", venv_key, render_final_dockerfile(recipe, plan.venv_image), bundle_digest(bundle),
        sorted((path, hashlib.sha256(content).hexdigest()) for path, content in files.items()),
    ])
    return replace(plan, recipe=replace(recipe, labels={**recipe.labels, IMAGE_KEY_LABEL: image_key}))


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _write_venv_context(
    bundle: StoredBundle, plan: _Plan, directory: Path, platform: ImagePlatform, cache: WheelCache, reporter: Reporter,
    *, offline: bool,
) -> None:
    """The image lock and a wheel for each of its pins (a missing one fails here, naming the packages)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_FILE).write_text(plan.lock_text)
    gather_wheels(
        directory / LOCK_FILE, platform, directory / WHEELS_DIR, cache, reporter,
        vendored=bundle.path / "env" / "wheels", offline=offline,
    )
    if plan.debs.files:
        (directory / DEBS_DIR).mkdir()
        for deb in plan.debs.files:
            shutil.copyfile(deb, directory / DEBS_DIR / deb.name)


def _write_bundle_context(bundle: StoredBundle, plan: _Plan, directory: Path, *, link: bool, offline: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_weight_layers(bundle, plan.weights, directory, link=link, offline=offline)
    write_bundle_layers(bundle, directory)
    write_target_files(plan.files, directory)


def export_context(bundle: StoredBundle, directory: Path, options: ContainerizeOptions, store: LocalStore, reporter: Reporter) -> Path:
    """``--context-only``: the context as a folder, for buildx, kaniko or CI (mtimes fixed on disk).

    One multi-stage Dockerfile; it builds the same layers and labels as ``containerize``.
    """
    target = image_target(options.target)
    platform = ImagePlatform.parse(options.platform, bundle.manifest.python_minor)
    base_image = options.base_image or default_base_image(bundle)
    cache = _wheel_cache(store)
    debs = _system_debs(None, bundle, base_image, platform, store, reporter, offline=options.offline)
    plan = _plan(bundle, target, base_image, platform, cache, reporter, options, debs)
    directory = prepare_context_dir(directory)
    try:
        _write_venv_context(bundle, plan, directory, platform, cache, reporter, offline=options.offline)
        _write_bundle_context(bundle, plan, directory, link=False, offline=options.offline)
        (directory / "Dockerfile").write_text(render_dockerfile(plan.recipe))
        for layer in (DATA_LAYER, CODE_LAYER, WEIGHTS_DIR):
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
    cache = _wheel_cache(store)
    client = connect()
    base_layers = ensure_base_image(client, base_image, platform, reporter)
    debs = _system_debs(client, bundle, base_image, platform, store, reporter, offline=options.offline)
    plan = _plan(bundle, target, base_image, platform, cache, reporter, options, debs)
    rebuild = options.no_cache or options.keep_builder

    existing = None if rebuild else _existing_image(client, plan, base_layers)
    if existing is not None:
        tag_image(client, existing.id, tag)
        reporter.info(f"the image of {bundle.tag} for --target {target.name} exists ({existing.id[:19]}): tagged {tag}")
        image, builder_tag = replace(existing, tag=tag), None
        venv: Literal["built", "reused", "image reused"] = "image reused"
    else:
        store.home.mkdir(parents=True, exist_ok=True)
        with store.staging() as staging:
            venv_ready = not rebuild and _venv_image_ready(client, plan.venv_image, base_layers)
            builder_tag = None
            # wheels are gathered (linked from the cache) even for a venv image that exists: every build checks
            # that the lock's wheels are at hand, and leaves them in the cache for --context-only --offline
            _write_venv_context(bundle, plan, staging / "venv", platform, cache, reporter, offline=options.offline)
            if venv_ready:
                reporter.info(f"the venv of this lock is built already: {plan.venv_image}")
            else:
                (staging / "venv" / "Dockerfile").write_text(render_venv_dockerfile(
                    base_image, plan.recipe.python_version, builder_for=tag, has_debs=plan.recipe.has_debs
                ))
                reporter.info(f"building the venv image {plan.venv_image} from {base_image} for {platform.docker} (offline, no network)")
                replaced = find_image(client, plan.venv_image)
                try:
                    build = _build(client, staging / "venv", plan.venv_image, reporter, no_cache=options.no_cache)
                except ImageBuildError as exc:  # a failed install leaves no ~1 GB of builder steps behind either
                    if not options.keep_builder:
                        remove_made_images(client, _builder_steps(exc.steps))
                    raise
                builder_tag = _after_venv_build(client, build, tag, options.keep_builder, reporter)
                if replaced is not None and replaced.id != build.image.id:
                    remove_unused_image(client, replaced.id)  # the venv image that had the tag, unless an image is built on it
            _write_bundle_context(bundle, plan, staging / "image", link=True, offline=options.offline)
            (staging / "image" / "Dockerfile").write_text(render_final_dockerfile(plan.recipe, plan.venv_image))
            reporter.info(f"building {tag} ({target.name}) on {plan.venv_image}")
            image = _build(client, staging / "image", tag, reporter, no_cache=options.no_cache).image
            venv = "reused" if venv_ready else "built"
    pushed = push_image(client, tag, reporter) if options.push else None
    return ContainerizeResult(image, time.perf_counter() - started, pushed, plan.venv_image, venv, builder_tag)


def _build(client: Any, context: Path, tag: str, reporter: Reporter, *, no_cache: bool) -> Build:
    with tempfile.TemporaryFile(dir=context.parent) as context_tar:
        write_context_tar(context, context_tar)
        return build_image(client, context_tar, tag, reporter, no_cache=no_cache)


def _existing_image(client: Any, plan: _Plan, base_layers: list[str]) -> BuiltImage | None:
    """An image built from this very plan, on today's base image (a base image pulled again since builds anew)."""
    for image in find_labelled(client, IMAGE_KEY_LABEL, plan.image_key):
        if image.layers[: len(base_layers)] == base_layers:
            return image
    return None


def _venv_image_ready(client: Any, venv_image: str, base_layers: list[str]) -> bool:
    found = find_image(client, venv_image)
    return found is not None and found.layers[:-1] == base_layers


def _after_venv_build(client: Any, build: Build, tag: str, keep: bool, reporter: Reporter) -> str | None:
    """Remove the builder stage's images this build made, or (``keep``) tag its last one TAG-builder."""
    froms = [index for index, step in enumerate(build.steps) if step.instruction.upper().startswith("FROM ")]
    if len(froms) < 2:  # not the two stages render_venv_dockerfile writes: leave the engine as it is
        return None
    builder = _builder_steps(build.steps)
    if not builder:
        return None
    if keep:
        repository, name_tag = split_reference(tag)
        builder_tag = f"{repository}:{name_tag[:120]}-builder"
        tag_image(client, builder[-1].image_id, builder_tag)
        reporter.info(f"kept the builder stage as {builder_tag}")
        return builder_tag
    removed = remove_made_images(client, builder)
    if removed:
        reporter.info(f"removed the builder stage's {removed} image{'s' if removed != 1 else ''} (--keep-builder keeps them)")
    return None


def _builder_steps(steps: list[BuildStep]) -> list[BuildStep]:
    """The steps of the builder stage after its FROM: never the base image a FROM step names."""
    froms = [index for index, step in enumerate(steps) if step.instruction.upper().startswith("FROM ")]
    if not froms:
        return []
    end = froms[1] if len(froms) > 1 else len(steps)
    return steps[froms[0] + 1 : end]


def _system_debs(
    client: Any, bundle: StoredBundle, base_image: str, platform: ImagePlatform, store: LocalStore, reporter: Reporter,
    *, offline: bool,
) -> FetchedDebs:
    """The .deb files of the bundle's system_packages for the base image's Debian release (none without them)."""
    packages = bundle.manifest.system_packages
    if not packages:
        return FetchedDebs((), ())
    if client is None:  # --context-only: the engine is needed only to read the base image's release
        client = connect()
        ensure_base_image(client, base_image, platform, reporter)
    release = read_base_release(client, base_image)
    return fetch_debs(packages, release, platform, store.cache, reporter, offline=offline)


def _wheel_cache(store: LocalStore) -> WheelCache:
    return WheelCache(store.cache / "wheels")
