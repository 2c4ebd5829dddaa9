"""``bundle export lambda``: a bundle as an AWS Lambda zip function."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="lambda")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .zip to write.")
@click.option("--arch", type=click.Choice(["x86_64", "arm64"]), default="x86_64", show_default=True, help="The function's architecture.")
@click.option("--python", default=None, help="The Lambda runtime's Python, e.g. 3.12. [default: the bundle's]")
@click.option(
    "--find-links", type=click.Path(file_okay=False, path_type=Path), multiple=True,
    help="Also look for wheels in DIR (before the wheel cache).",
)
@click.option(
    "--buffer-streams", is_flag=True,
    help="Answer a streaming API with its whole stream at once (str items joined, others a JSON array); "
    "without it, a bundle with a streaming API is refused.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings.")
def export_lambda(
    ref: str, output: Path, arch: str, python: str | None, find_links: tuple[Path, ...], buffer_streams: bool, quiet: bool
) -> None:
    """Write a zip for an AWS Lambda Python runtime: handler, bundle and its locked dependencies.

    Set the function's handler to modelbundle_handler.handler. It answers API Gateway
    (REST and HTTP API) and Function URL events, and {"api": NAME, "input": VALUE}.
    WebSocket APIs are left out (answered 501): Lambda cannot serve them.
    """
    from ..bundler import LocalStore, Reporter
    from ..exporters.awslambda import export_lambda as write_zip

    store = LocalStore()
    bundle = store.get(ref)
    result = write_zip(
        bundle, output, cache_dir=store.cache, arch=arch, python=python, find_links=find_links, reporter=Reporter(quiet),
        buffer_streams=buffer_streams,
    )
    mib = 1024 * 1024
    click.echo(
        f"exported {bundle.tag} to {output} ({result.zipped_size / mib:.1f} MiB, {result.unzipped_size / mib:.1f} MiB unzipped): "
        f"runtime {result.runtime.identifier}, architecture {result.runtime.arch}, handler {result.handler}"
    )
