"""``bundle weights pin``: the digests of a project's referenced weights, in ``weights.lock``."""

from __future__ import annotations

import click

from .._sizes import human_size


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


@weights.command()
@click.argument("bundle", metavar="BUNDLE")
@click.option("--service", "service", metavar="NAME", default=None,
              help="Of a composed bundle, only the weights of this service (what its pods load).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def fetch(bundle: str, service: str | None, quiet: bool) -> None:
    """Fetch the weights BUNDLE references into the cache, verified (a folder, or NAME[:VERSION] in the local store).

    What a Kubernetes init container runs before the server starts; a blob already cached is not fetched again.
    """
    from pathlib import Path

    from ..bundler import MANIFEST_FILE, BundleManifest, LocalStore
    from ..errors import ModelbundleError
    from ..stores import TransferProgress
    from ..weights import cache_root, ensure, references

    folder = Path(bundle)
    if (folder / MANIFEST_FILE).is_file():
        manifest = BundleManifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
    else:
        manifest = LocalStore().get(bundle).manifest
    refs = references(manifest)
    if service is not None:
        names = [info.name for info in manifest.services]
        if service not in names:
            graph = f"its services are {', '.join(names)}" if names else "it serves one service, not a graph"
            raise ModelbundleError(f"--service {service!r}: {manifest.tag} has no service of that name; {graph}")
        refs = [ref for ref in refs if manifest.artifact_owner(ref.artifact) == service]
    with TransferProgress(quiet) as progress:
        paths = ensure(refs, progress=progress)
    total = sum(ref.size for ref in refs)
    whose = f"{manifest.tag}, service {service}" if service is not None else manifest.tag
    click.echo(f"{len(paths)} referenced weights of {whose} ({human_size(total)}) are in {cache_root()}")
