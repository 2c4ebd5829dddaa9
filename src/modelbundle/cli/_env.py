"""``bundle env create``."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def env() -> None:
    """Environments for bundles."""


@env.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings.")
def create(ref: str, directory: Path, quiet: bool) -> None:
    """Create a virtualenv in DIRECTORY from the bundle's requirements.lock (with hashes)."""
    from ..bundler import LocalStore, Reporter, create_env

    store = LocalStore()
    bundle = store.get(ref)
    path = create_env(bundle, directory, store.cache, Reporter(quiet))
    click.echo(f"created {path} for {bundle.tag}; serve with: {path}/bin/bundle serve {bundle.tag}")
