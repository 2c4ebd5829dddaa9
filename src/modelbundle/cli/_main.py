"""The ``bundle`` (= ``modelbundle``) command group, and the one place errors are printed."""

from __future__ import annotations

import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ModelbundleError


class _Group(click.Group):
    """Prints a ModelbundleError on one line and exits 1; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelbundleError as exc:
            if ctx.meta.get("modelbundle.debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelbundle")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Package, serve and ship ML models."""
    ctx.meta["modelbundle.debug"] = debug


def _register() -> None:
    from ._archive import export, import_bundle
    from ._build import build
    from ._client import client
    from ._containerize import containerize
    from ._deploy import deploy
    from ._deploy_ray import deploy_ray
    from ._env import env
    from ._serve import serve
    from ._store import delete, get, list_bundles
    from ._transfer import pull, push
    from ._weights import weights

    for command in (serve, build, list_bundles, get, delete, export, import_bundle, env, push, pull, containerize, deploy, client, weights):
        main.add_command(command)
    deploy.add_command(deploy_ray)


_register()
