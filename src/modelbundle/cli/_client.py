"""``bundle client``: a typed Python client module for a bundle in the store."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click


@click.command("client")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the module here (default: standard output)."
)
def client(ref: str, output: Path | None) -> None:
    """Write a typed client module for the bundle's APIs (mypy and IDE completion), from its openapi.json."""
    from ..bundler import LocalStore
    from ..client import render_stub
    from ..errors import IntegrityError

    bundle = LocalStore().get(ref)
    try:
        document = json.loads((bundle.path / "openapi.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{bundle.tag} has no readable openapi.json ({exc}); build it again with bundle build") from None
    source = render_stub(document, bundle.tag)
    if output is None:
        click.echo(source, nl=False)
        return
    _write(output, source)
    click.echo(f"wrote {output}: a client for {bundle.tag}; use it with: from {output.stem} import ...", err=True)


def _write(path: Path, text: str) -> None:
    """All of ``text`` or nothing: an interrupted write leaves the old file, never half a module."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
