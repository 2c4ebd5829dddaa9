"""``bundle build``."""

from __future__ import annotations

from typing import Any

import click

from .._sizes import human_size
from ._options import key_value_pairs


@click.command()
@click.argument("service", required=False, metavar="[TARGET]")
@click.option("--name", help="Bundle name. [default: the service's name, lowercased]")
@click.option("--version", help="Bundle version. [default: a digest of the content]")
@click.option("--label", "labels", multiple=True, callback=key_value_pairs, help="A label KEY=VALUE (repeatable).")
@click.option("--include", multiple=True, help="Extra files for src/, a glob (repeatable).")
@click.option("--exclude", multiple=True, help="Files to leave out, a gitignore pattern (repeatable).")
@click.option("--requirements", type=click.Path(dir_okay=False), help="A requirements file used instead of inference.")
@click.option("--python-package", "python_packages", multiple=True, help="A requirement added over inference (repeatable).")
@click.option("--system-package", "system_packages", multiple=True,
              help="A Debian package the image installs, e.g. libgomp1 (repeatable).")
@click.option("--vendor-wheels/--no-vendor-wheels", default=None, help="Store the locked wheels in env/wheels.")
@click.option("--conda-pack", is_flag=True, default=None, help="Pack the conda environment into the bundle.")
@click.option("--find-links", multiple=True, help="A folder of wheels to lock from (repeatable).")
@click.option("--offline", is_flag=True, default=None, help="Lock from the wheel cache only, without the index.")
@click.option(
    "--resolver", type=click.Choice(["auto", "uv", "pip-tools"]), default=None,
    help="What locks the environment: uv, pip-compile, or auto (uv when it can run). [default: auto]",
)
@click.option("--mlflow", "mlflow_dir", type=click.Path(file_okay=False), default=None,
              help="An MLflow model directory: generate the service (POST /predict) from its signature.")
@click.option("--force", is_flag=True, help="Build again even when nothing changed since the last build of these options.")
@click.option(
    "--fetch-digest", is_flag=True, default=None,
    help="Compute the digest of referenced weights (Artifact(uri=...)) that have none, by streaming them.",
)
@click.option("--quiet", "-q", is_flag=True, default=None, help="Print only warnings and the tag.")
@click.option("--output", "-o", type=click.Choice(["summary", "tag"]), default="summary", help="tag: print only NAME:VERSION.")
def build(output: str, force: bool, mlflow_dir: str | None, **flags: Any) -> None:
    """Build a bundle from TARGET (module:Class, path/file.py:Class, or path/file.py when it defines one Service), an MLflow model (--mlflow DIR) or [tool.modelbundle]."""
    from ..bundler import build as build_bundle
    from ..bundler import build_mlflow, resolve_build_options

    if output == "tag":
        flags["quiet"] = True
    options = resolve_build_options(flags)
    if mlflow_dir is not None:
        if flags.get("service"):
            raise click.UsageError("pass either TARGET or --mlflow MODEL_DIR, not both")
        bundle = build_mlflow(mlflow_dir, options.model_copy(update={"service": None}), force=force)
    else:
        bundle = build_bundle(options, force=force)
    if output == "tag":
        click.echo(bundle.tag)
        return
    manifest = bundle.manifest
    apis = ", ".join(f"POST {a.route}" for a in manifest.apis)
    click.echo(f"built {bundle.tag}")
    click.echo(f"  size          {human_size(bundle.size())}")
    click.echo(f"  apis          {apis}")
    click.echo(
        f"  dependencies  {len(manifest.dependencies.requirements)} direct, {manifest.dependencies.locked} locked"
    )
    click.echo(f"  artifacts     {', '.join(a.name for a in manifest.artifacts) or 'none'}")
    click.echo(f"  path          {bundle.path}")
