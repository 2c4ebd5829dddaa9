"""``bundle deploy sagemaker``: an endpoint for a bundle's SageMaker image."""

from __future__ import annotations

import click

from ._options import key_value_pairs


@click.group()
def deploy() -> None:
    """Deploy a bundle to a cloud service."""


@deploy.command(name="sagemaker")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--role", required=True, help="The IAM role ARN SageMaker assumes (reads the image from ECR and the model data from S3).")
@click.option("--instance-type", default="ml.m5.large", show_default=True, help="The instance type of the endpoint.")
@click.option("--instance-count", type=int, default=1, show_default=True, help="How many instances serve the endpoint.")
@click.option("--image-uri", default=None, help="The image in ECR. [default: ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:VERSION-sagemaker]")
@click.option("--model-data", default=None, help="s3://BUCKET/KEY.tar.gz from bundle export sagemaker. [default: the artifacts in the image]")
@click.option("--endpoint-name", default=None, help="The endpoint to create or update. [default: the bundle's name]")
@click.option("--region", default=None, help="The AWS region. [default: AWS_REGION or the AWS config]")
@click.option("--endpoint-url", default=None, help="Another endpoint for the AWS APIs (also AWS_ENDPOINT_URL).")
@click.option("--env", "environment", multiple=True, callback=key_value_pairs, metavar="KEY=VALUE", help="An environment variable of the container (repeatable).")
@click.option("--no-wait", is_flag=True, help="Return once the endpoint is being created.")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Seconds to wait for the endpoint to be InService.")
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings and the result.")
def deploy_sagemaker(
    ref: str, role: str, instance_type: str, instance_count: int, image_uri: str | None, model_data: str | None,
    endpoint_name: str | None, region: str | None, endpoint_url: str | None, environment: dict[str, str],
    no_wait: bool, timeout: float, quiet: bool,
) -> None:
    """Create (or update) a SageMaker endpoint serving a bundle's --target sagemaker image."""
    from ..bundler import LocalStore, Reporter
    from ..exporters.sagemaker import DeployOptions
    from ..exporters.sagemaker import deploy_sagemaker as run

    bundle = LocalStore().get(ref)
    options = DeployOptions(
        role=role, image_uri=image_uri, model_data=model_data, instance_type=instance_type, instance_count=instance_count,
        endpoint_name=endpoint_name, region=region, endpoint_url=endpoint_url, environment=environment,
        wait=not no_wait, timeout=timeout,
    )
    result = run(bundle, options, Reporter(quiet))
    verb = "updated" if result.updated else "created"
    click.echo(f"{verb} endpoint {result.endpoint_name} ({result.status}): model {result.model_name}, image {result.image_uri}")
