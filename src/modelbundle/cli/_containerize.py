"""``bundle containerize``."""

from __future__ import annotations

from pathlib import Path

import click

from .._sizes import human_size


def _image_reference(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..errors import ExportError
    from ..exporters import parse_image_reference

    if value is not None:
        try:
            parse_image_reference(value, f"--{(param.name or '').replace('_', '-')}")
        except ExportError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[1]) from None
    return value


@click.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-t", "--tag", callback=_image_reference, help="Image reference to tag (default NAME:VERSION); --push sends it to the registry it names.")
@click.option("--base-image", callback=_image_reference, help="Base image with python3 (default python:X.Y-slim for the bundle's Python).")
@click.option(
    "--target", default="docker", show_default=True, metavar="docker|sagemaker|lambda-image|ray",
    help="The kind of image: bundle serve on port 3000 (docker), SageMaker's serving contract on 8080 (sagemaker), "
    "a Lambda container image (lambda-image), or a Ray node with Ray Serve for bundle deploy ray (ray).",
)
@click.option(
    "--relax-transitive-pins", is_flag=True,
    help="When the target's requirements (ray[serve], awslambdaric) conflict with a pin the bundle has only transitively, "
    "let them move it in the image (each moved pin is printed; the bundle and its lock stay as built). Direct requirements never move.",
)
@click.option(
    "--target-lock", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="A hashed lock (uv pip compile / pip-compile --generate-hashes) of the target's requirements: its pins decide "
    "what the target adds (the bundle's lock still wins), and every wheel added or moved must have one of its hashes.",
)
@click.option("--platform", default="linux/amd64", show_default=True, help="linux/amd64 or linux/arm64: the wheels gathered for the image.")
@click.option("--push", is_flag=True, help="Push the image to the registry named in --tag (credentials from the Docker config).")
@click.option("--context-only", type=click.Path(file_okay=False, path_type=Path), help="Write the build context (Dockerfile and files) to this folder instead of building.")
@click.option("--no-cache", is_flag=True, help="Build every layer again, the venv's included.")
@click.option(
    "--keep-builder", is_flag=True,
    help="Keep the builder stage's images (tagged TAG-builder, label ai.modelbundle.stage=builder) instead of removing them "
    "after the build; the venv image (modelbundle-venv:KEY) is the build cache either way.",
)
@click.option(
    "--weights", type=click.Choice(["baked", "fetch"]), default=None,
    help="Referenced weights: baked into their own layers (one per blob, before the code: a code-only change rebuilds none, "
    "images with the same weights share them), or fetched by the container at start into /var/lib/modelbundle/blobs "
    "(keep them in a volume: -v weights:/var/lib/modelbundle/blobs). [default: baked up to 2 GiB in total, else fetch]",
)
@click.option("--offline", is_flag=True, envvar="MODELBUNDLE_OFFLINE", help="Take wheels only from the wheel cache and the bundle.")
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings and the result.")
def containerize(
    ref: str, tag: str | None, target: str, base_image: str | None, relax_transitive_pins: bool, target_lock: Path | None,
    platform: str, push: bool, context_only: Path | None, no_cache: bool, keep_builder: bool, weights: str | None, offline: bool,
    quiet: bool,
) -> None:
    """Build a Docker image that serves a bundle (default: non-root, HEALTHCHECK on /readyz, port 3000).

    The image installs only wheels gathered on this machine (no network during
    the build). Run it with: docker run -p 3000:3000 IMAGE. --target sagemaker
    makes a SageMaker inference image (docker run IMAGE serve, port 8080);
    --target lambda-image a Lambda container image (awslambdaric); --target ray
    a Ray head/worker image for `bundle deploy ray`. Their requirements join the
    bundle's lock without moving its pins; when they conflict, the error names
    the pins and the way out (--relax-transitive-pins, or a new build).

    The venv is built once per lock, base image and platform, as the venv image
    modelbundle-venv:KEY, and every target of the bundle (and every bundle with
    the same lock) is built on it; an image that exists already is only tagged.
    The builder stage's images are removed after the build unless --keep-builder.
    """
    from ..bundler import LocalStore, Reporter
    from ..exporters.docker import ContainerizeOptions, default_tag, export_context, image_target
    from ..exporters.docker import containerize as build

    if push and context_only:
        raise click.UsageError("--push builds an image; --context-only does not build one")
    if keep_builder and context_only:
        raise click.UsageError("--keep-builder keeps what a build makes; --context-only does not build")
    kind = image_target(target)
    store = LocalStore()
    bundle = store.get(ref)
    options = ContainerizeOptions(
        tag=tag, base_image=base_image, platform=platform, no_cache=no_cache, push=push, offline=offline, target=target,
        relax_transitive_pins=relax_transitive_pins, target_lock=target_lock, keep_builder=keep_builder,
        weights=weights,
    )
    reporter = Reporter(quiet)
    if context_only is not None:
        directory = export_context(bundle, context_only, options, store, reporter)
        click.echo(f"wrote the build context of {bundle.tag} to {directory}; build it with: docker build -t {tag or default_tag(bundle, target)} {directory}")
        return
    result = build(bundle, options, store, reporter)
    image = result.image
    verb = "tagged the existing image" if result.venv == "image reused" else "built"
    click.echo(
        f"{verb} {image.tag} ({'' if kind.name == 'docker' else kind.name + ', '}{image.id[:19]}, {human_size(image.size)}, {len(image.layers)} layers) "
        f"from {bundle.tag} in {result.seconds:.1f} s"
    )
    if result.builder_tag:
        click.echo(f"kept the builder stage as {result.builder_tag}")
    if result.pushed_digest:
        repository = image.tag.rsplit(":", 1)[0] if ":" in image.tag.rsplit("/", 1)[-1] else image.tag
        click.echo(f"pushed {repository}@{result.pushed_digest}")
    if not quiet:
        click.echo("run it: " + kind.run_hint.format(tag=image.tag))
