"""``bundle serve TARGET``."""

from __future__ import annotations

from typing import Any

import click

from ._options import server_options


@click.command()
@click.argument("target")
@server_options
def serve(target: str, **flags: Any) -> None:
    """Serve a Service over HTTP.

    TARGET is a bundle from the local store (NAME or NAME:VERSION), a folder
    holding a bundle (e.g. /opt/bundle in an image), or code: module:Class,
    path/to/file.py:Class, or path/to/file.py when it defines one Service.
    Every option can also be set with an env var MODELBUNDLE_<OPTION>, e.g.
    MODELBUNDLE_PORT=8080.
    """
    from .. import _startup_gc

    _startup_gc.pause()  # before the runtime and the service are imported: see _startup_gc
    from ..runtime import ServeConfig
    from ..runtime import serve as run_server

    run_server(target, ServeConfig.resolve(flags))
