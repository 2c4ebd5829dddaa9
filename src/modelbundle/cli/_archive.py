"""``bundle export archive`` and ``bundle import``; ``export`` is a group of output formats."""

from __future__ import annotations

from pathlib import Path

import click

from ._export_lambda import export_lambda
from ._export_sagemaker import export_sagemaker


@click.group()
def export() -> None:
    """Export a bundle in another format."""


export.add_command(export_lambda)
export.add_command(export_sagemaker)


@export.command(name="archive")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .tar.gz to write.")
def export_archive(ref: str, output: Path) -> None:
    """Write a bundle as one .tar.gz (bundle import reads it back)."""
    from ..bundler import LocalStore
    from ..bundler import export_archive as write_archive

    bundle = LocalStore().get(ref)
    write_archive(bundle, output)
    click.echo(f"exported {bundle.tag} to {output}")


@click.command(name="import")
@click.argument("archive", type=click.Path(path_type=Path))
def import_bundle(archive: Path) -> None:
    """Import a bundle archive into the local store, after checking every file."""
    from ..bundler import import_archive

    bundle, created = import_archive(archive)
    click.echo(f"imported {bundle.tag}" if created else f"{bundle.tag} is already in the store")


def _add_formats() -> None:
    from ._export_kubernetes import export_kserve, export_kubernetes

    for command in (export_kubernetes, export_kserve):
        export.add_command(command)


_add_formats()
