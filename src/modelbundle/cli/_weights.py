"""``bundle weights pin``: the digests of a project's referenced weights, in ``weights.lock``."""

from __future__ import annotations

import click

from ._format import human_size


@click.group()
def weights() -> None:
    """Weights referenced by URI (Artifact('file', uri=...)): pin their digests."""


@weights.command()
@click.argument("service", required=False, metavar="[TARGET]")
def pin(service: str | None) -> None:
    """Hash every weight TARGET references (streaming) and write weights.lock beside pyproject.toml."""
    from ..bundler import pin_weights, resolve_build_options

    path, refs = pin_weights(resolve_build_options({"service": service}))
    for ref in refs:
        click.echo(f"pinned {ref.artifact}  sha256:{ref.sha256}  {human_size(ref.size)}  {ref.uri}")
    click.echo(f"wrote {path}")
