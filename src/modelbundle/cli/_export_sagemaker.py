"""``bundle export sagemaker``: a bundle's artifacts as SageMaker model data (model.tar.gz)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="sagemaker")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="The folder to write model.tar.gz into.")
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings and the result.")
def export_sagemaker(ref: str, output: Path, quiet: bool) -> None:
    """Write OUTPUT/model.tar.gz: the bundle's artifacts as SageMaker model data.

    Upload it to S3 and pass its URL as the model's ModelDataUrl (bundle deploy
    sagemaker --model-data s3://...): SageMaker unpacks it into /opt/ml/model, and
    an image of a bundle of the same service (bundle containerize --target
    sagemaker) serves those artifacts instead of its own.
    """
    from ..bundler import LocalStore, Reporter
    from ..exporters.sagemaker import export_model_data

    bundle = LocalStore().get(ref)
    result = export_model_data(bundle, output, Reporter(quiet))
    click.echo(f"exported the artifacts of {bundle.tag} to {result.path} ({result.files} files, {result.size} bytes, sha256 {result.sha256[:16]})")
