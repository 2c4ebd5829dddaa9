"""``bundle push`` and ``bundle pull``."""

from __future__ import annotations

import click

from .._sizes import human_size
from ._options import remote_options


@click.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.argument("store_url", metavar="STORE")
@remote_options
@click.option(
    "--with-weights", is_flag=True,
    help="Also copy the bundle's referenced weights into the store (by digest: those already there are not sent again).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def push(ref: str, store_url: str, endpoint_url: str | None, insecure: bool, with_weights: bool, quiet: bool) -> None:
    """Push a bundle to STORE (file:///dir, s3://bucket/prefix, oci://host[:port]/namespace)."""
    from ..bundler import LocalStore
    from ..stores import TransferProgress, open_store, push_weights

    bundle = LocalStore().get(ref)
    store = open_store(store_url, endpoint_url=endpoint_url, insecure=insecure)
    try:
        with TransferProgress(quiet) as progress:
            report = store.push(bundle, progress)
            weights = push_weights(store, bundle, progress) if with_weights else None
    finally:
        store.close()
    if not quiet:
        click.echo(
            f"pushed {bundle.tag} to {store_url}: {report.sent_blobs} blob(s) sent ({human_size(report.sent_bytes)}), "
            f"{report.skipped_blobs} already there ({human_size(report.skipped_bytes)})"
        )
        if weights is not None:
            click.echo(
                f"weights: {weights.sent_blobs} blob(s) sent ({human_size(weights.sent_bytes)}), "
                f"{weights.skipped_blobs} already there ({human_size(weights.skipped_bytes)})"
            )


@click.command()
@click.argument("ref", metavar="STORE/NAME[:VERSION]")
@remote_options
@click.option(
    "--with-weights", is_flag=True,
    help="Also fetch the bundle's referenced weights into the local cache: from the store if it has them, else from their URIs.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def pull(ref: str, endpoint_url: str | None, insecure: bool, with_weights: bool, quiet: bool) -> None:
    """Pull a bundle from a store into the local store, verifying every digest; NAME alone means the latest version."""
    from ..bundler import LocalStore
    from ..stores import TransferProgress, open_store, pull_weights, split_bundle_url

    store_url, name, version = split_bundle_url(ref)
    store = open_store(store_url, endpoint_url=endpoint_url, insecure=insecure)
    try:
        if version is None:
            version = store.latest(name)
            if not quiet:
                click.echo(f"the latest {name} in {store_url} is {name}:{version}")
        with TransferProgress(quiet) as progress:
            bundle, report = store.pull(name, version, LocalStore(), progress)
            weights = pull_weights(store, bundle, progress) if with_weights else None
    finally:
        store.close()
    if not quiet:
        click.echo(
            f"pulled {bundle.tag}: {report.sent_blobs} blob(s) downloaded ({human_size(report.sent_bytes)}), "
            f"{report.skipped_blobs} reused from the local store ({human_size(report.skipped_bytes)})"
        )
        if weights is not None:
            click.echo(
                f"weights: {weights.sent_blobs} blob(s) fetched ({human_size(weights.sent_bytes)}), "
                f"{weights.skipped_blobs} already in the cache ({human_size(weights.skipped_bytes)})"
            )
