"""``bundle deploy sagemaker`` against moto's standalone server on 127.0.0.1.

A MOCK: SageMaker, S3 and STS are moto's emulation (a real process on loopback,
reached through boto3's whole stack), because the real AWS cannot be reached from
this machine. What these tests show is the calls we make and what we do with the
answers; what they cannot show is a real endpoint starting the image (moto makes
endpoints InService at once and runs no container) or AWS's IAM checks. The
container side of the contract is tested for real in test_image.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import cli
from modelbundle.bundler import Reporter, StoredBundle
from modelbundle.errors import DeployError
from modelbundle.exporters.sagemaker import (
    DeployOptions,
    deploy_sagemaker,
    export_model_data,
    wait_for_endpoint,
)
from stores._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-pair:1-sagemaker"


@pytest.fixture
def sagemaker(moto_s3: MotoS3) -> Any:
    import boto3

    return boto3.session.Session().client("sagemaker", endpoint_url=moto_s3.endpoint_url)


@pytest.fixture
def model_data(moto_s3: MotoS3, base_bundle: StoredBundle, tmp_path: Path) -> str:
    archive = export_model_data(base_bundle, tmp_path)
    moto_s3.client().upload_file(str(archive.path), moto_s3.bucket, "models/iris-pair/model.tar.gz")
    return f"s3://{moto_s3.bucket}/models/iris-pair/model.tar.gz"


def options(moto_s3: MotoS3, **overrides: Any) -> DeployOptions:
    values: dict[str, Any] = {"role": ROLE, "image_uri": IMAGE, "endpoint_url": moto_s3.endpoint_url, "poll_seconds": 0.01}
    return DeployOptions(**{**values, **overrides})


def test_deploy_creates_the_model_config_and_endpoint(moto_s3: MotoS3, sagemaker: Any, base_bundle: StoredBundle, model_data: str) -> None:
    result = deploy_sagemaker(
        base_bundle, options(moto_s3, model_data=model_data, instance_type="ml.c5.xlarge", instance_count=2, environment={"A": "1"}),
    )
    assert (result.status, result.updated, result.endpoint_name) == ("InService", False, "iris-pair")

    model = sagemaker.describe_model(ModelName=result.model_name)
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    assert model["PrimaryContainer"]["Environment"] == {"A": "1"}
    assert model["ExecutionRoleArn"] == ROLE
    assert result.model_name.startswith(f"iris-pair-{base_bundle.manifest.version}-")

    config = sagemaker.describe_endpoint_config(EndpointConfigName=result.endpoint_config_name)
    variant = config["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (result.model_name, "ml.c5.xlarge", 2)

    endpoint = sagemaker.describe_endpoint(EndpointName="iris-pair")
    assert (endpoint["EndpointConfigName"], endpoint["EndpointStatus"]) == (result.endpoint_config_name, "InService")


def test_deploying_again_reuses_the_model_and_its_configuration(moto_s3: MotoS3, sagemaker: Any, base_bundle: StoredBundle) -> None:
    first = deploy_sagemaker(base_bundle, options(moto_s3, endpoint_name="iris-a"))
    second = deploy_sagemaker(base_bundle, options(moto_s3, endpoint_name="iris-b"))
    third = deploy_sagemaker(base_bundle, options(moto_s3, endpoint_name="iris-c", instance_count=3))
    assert first.model_name == second.model_name == third.model_name
    assert first.endpoint_config_name == second.endpoint_config_name != third.endpoint_config_name
    assert len(sagemaker.list_models()["Models"]) == 1
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 2
    assert "ModelDataUrl" not in sagemaker.describe_model(ModelName=first.model_name)["PrimaryContainer"]  # the image's artifacts


def test_an_existing_endpoint_is_updated(moto_s3: MotoS3, base_bundle: StoredBundle) -> None:
    deploy_sagemaker(base_bundle, options(moto_s3, endpoint_name="iris-prod"))
    # moto 5 does not implement UpdateEndpoint (it answers 500), so this shows only that an existing
    # endpoint takes the update path and that the failure comes back as one line naming the call
    with pytest.raises(DeployError, match=r"^SageMaker deploy: UpdateEndpoint failed: ") as info:
        deploy_sagemaker(base_bundle, options(moto_s3, endpoint_name="iris-prod", instance_count=3))
    assert "\n" not in str(info.value)


def test_the_default_image_is_in_the_accounts_ecr(moto_s3: MotoS3, sagemaker: Any, base_bundle: StoredBundle) -> None:
    result = deploy_sagemaker(base_bundle, options(moto_s3, image_uri=None, region="eu-west-1"))
    version = base_bundle.manifest.version
    assert result.image_uri == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris-pair:{version}-sagemaker"


def test_missing_model_data_is_named_before_anything_is_created(moto_s3: MotoS3, sagemaker: Any, base_bundle: StoredBundle) -> None:
    url = f"s3://{moto_s3.bucket}/nothing/model.tar.gz"
    with pytest.raises(DeployError, match=rf"^no object at {url}; upload the model\.tar\.gz of bundle export sagemaker there"):
        deploy_sagemaker(base_bundle, options(moto_s3, model_data=url))
    assert sagemaker.list_models()["Models"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "sagemaker-role"}, r"^--role 'sagemaker-role' is not an IAM role ARN"),
        ({"instance_count": 0}, r"^--instance-count must be at least 1$"),
        ({"instance_type": "m5.large"}, r"^--instance-type 'm5.large' is not a SageMaker instance type"),
        ({"endpoint_name": "-bad"}, r"^--endpoint-name '-bad': up to 63 letters"),
        ({"model_data": "https://x/model.tar.gz"}, r"^--model-data 'https://x/model.tar.gz' must be s3://BUCKET/KEY\.tar\.gz"),
    ],
)
def test_bad_options_are_refused_before_any_call(moto_s3: MotoS3, base_bundle: StoredBundle, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        deploy_sagemaker(base_bundle, options(moto_s3, **overrides))


def test_an_error_from_aws_is_one_line_through_the_cli(moto_s3: MotoS3, sm_home: Path, base_bundle: StoredBundle) -> None:
    result = cli(
        "deploy", "sagemaker", base_bundle.tag, "--role", ROLE, "--image-uri", IMAGE, "--instance-type", "ml.bogus",
        "--endpoint-url", moto_s3.endpoint_url, "--region", "us-east-1", home=sm_home,
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(
        "error: SageMaker deploy: CreateEndpointConfig failed: ValidationException: Value 'ml.bogus' at 'instanceType'"
    ), errors[0]


def test_the_cli_creates_and_waits(moto_s3: MotoS3, sm_home: Path, base_bundle: StoredBundle, sagemaker: Any) -> None:
    result = cli(
        "deploy", "sagemaker", base_bundle.tag, "--role", ROLE, "--image-uri", IMAGE, "--instance-type", "ml.m5.xlarge",
        "--endpoint-url", moto_s3.endpoint_url, "--region", "us-east-1", "--endpoint-name", "cli-endpoint", home=sm_home,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created endpoint cli-endpoint (InService): model iris-pair-"), result.stdout
    assert sagemaker.describe_endpoint(EndpointName="cli-endpoint")["EndpointStatus"] == "InService"


# -- waiting (a scripted describe: moto's endpoints are InService at once) ----------------------------------
def _script(*answers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from answers


def test_waiting_polls_until_in_service() -> None:
    answers = _script({"EndpointStatus": "Creating"}, {"EndpointStatus": "Creating"}, {"EndpointStatus": "InService"})
    ticks = itertools.count()
    slept: list[float] = []
    status = wait_for_endpoint(
        lambda: next(answers), "e", Reporter(quiet=True), poll_seconds=5, clock=lambda: float(next(ticks)), sleep=slept.append
    )
    assert (status, slept) == ("InService", [5, 5])


def test_a_failed_endpoint_says_why() -> None:
    answers = _script({"EndpointStatus": "Creating"}, {"EndpointStatus": "Failed", "FailureReason": "The primary container did not pass the ping health check."})
    with pytest.raises(DeployError, match=r"^endpoint e is Failed: The primary container did not pass the ping health check\.; its CloudWatch logs"):
        wait_for_endpoint(lambda: next(answers), "e", Reporter(quiet=True), sleep=lambda _: None)


def test_waiting_gives_up_after_the_timeout() -> None:
    ticks = itertools.count(step=100)
    with pytest.raises(DeployError, match=r"^endpoint e is still Creating after 250 s"):
        wait_for_endpoint(
            lambda: {"EndpointStatus": "Creating"}, "e", Reporter(quiet=True), timeout=250,
            clock=lambda: float(next(ticks)), sleep=lambda _: None,
        )
