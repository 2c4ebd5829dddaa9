"""``bundle list``, ``bundle get``, ``bundle delete``."""

from __future__ import annotations

import click

from .._sizes import human_size
from ._format import print_json, print_table
from ._options import remote_options


@click.command(name="list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote_options
@click.option("--remote", metavar="STORE", help="List a remote store (file://, s3://, oci://) instead.")
def list_bundles(name: str | None, as_json: bool, remote: str | None, endpoint_url: str | None, insecure: bool) -> None:
    """List the bundles in the local store (all, or the versions of NAME), or in a remote store."""
    from ..bundler import LocalStore

    if remote is not None:
        _list_remote(remote, name, as_json, endpoint_url, insecure)
        return
    bundles = LocalStore().list(name)
    if as_json:
        print_json(
            [
                {
                    "name": b.manifest.name, "version": b.manifest.version, "created_at": b.manifest.created_at,
                    "size": b.size(), "apis": [a.name for a in b.manifest.apis], "path": str(b.path),
                }
                for b in bundles
            ]
        )
        return
    if not bundles:
        click.echo("no bundles yet; make one with: bundle build module:Class")
        return
    rows = [
        (b.manifest.name, b.manifest.version, b.manifest.created_at.replace("T", " ")[:19], human_size(b.size()),
         ", ".join(a.name for a in b.manifest.apis))
        for b in bundles
    ]
    print_table(["NAME", "VERSION", "CREATED", "SIZE", "APIS"], rows)


@click.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON (the default).")
def get(ref: str, as_json: bool) -> None:
    """Print the manifest of a bundle; NAME alone means the latest version."""
    from ..bundler import LocalStore

    bundle = LocalStore().get(ref)
    print_json(bundle.manifest.model_dump(mode="json"))


@click.command()
@click.argument("ref", metavar="NAME:VERSION")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref: str, yes: bool) -> None:
    """Delete a bundle from the local store."""
    from ..bundler import LocalStore
    from ..errors import StoreError

    if ":" not in ref:
        raise StoreError(f"delete needs NAME:VERSION, got {ref!r} (bundle list {ref} shows its versions)")
    store = LocalStore()
    bundle = store.get(ref)
    if not yes and not _confirmed(f"delete {bundle.tag} ({bundle.path})?", f"add -y to delete {bundle.tag}"):
        raise click.Abort()  # answered no
    store.delete(bundle.tag)
    click.echo(f"deleted {bundle.tag}")


def _confirmed(question: str, instead: str) -> bool:
    """The answer to ``question``; with no terminal and nothing on stdin (a script, CI) a StoreError saying ``instead``."""
    import sys

    from ..errors import StoreError

    try:
        return click.confirm(question, default=False)
    except click.Abort:  # end of input, or Ctrl-C at a terminal
        if sys.stdin is not None and sys.stdin.isatty():
            raise
        raise StoreError(f"{question[:-1]}: no answer, as stdin is not a terminal; {instead}") from None


def _list_remote(url: str, name: str | None, as_json: bool, endpoint_url: str | None, insecure: bool) -> None:
    from ..stores import open_store

    store = open_store(url, endpoint_url=endpoint_url, insecure=insecure)
    try:
        bundles = [b for b in store.list() if name is None or b.name == name]
    finally:
        store.close()
    if as_json:
        print_json([{"name": b.name, "version": b.version} for b in bundles])
    elif not bundles:
        click.echo(f"no bundles in {url}")
    else:
        print_table(["NAME", "VERSION"], [(b.name, b.version) for b in bundles])
