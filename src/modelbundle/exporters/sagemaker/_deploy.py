"""``bundle deploy sagemaker``: a SageMaker model, endpoint configuration and endpoint for a bundle's image.

Names are derived from the bundle and from what the resource holds, so a
repeated deploy of the same image, model data and role reuses the model and
configuration it made before, and a deploy to an existing endpoint updates it
in place (``UpdateEndpoint``: SageMaker keeps the old fleet until the new one is
healthy). This module is the one boundary where boto3's errors become
``DeployError``s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ...bundler import Reporter, StoredBundle
from ...errors import DeployError

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_TIMEOUT = 1800.0
DEFAULT_POLL_SECONDS = 15.0
#: what SageMaker accepts as a model, configuration or endpoint name
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")


@dataclass(frozen=True)
class DeployOptions:
    """What ``bundle deploy sagemaker`` takes; only ``role`` has no default."""

    role: str
    #: default: ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:VERSION-sagemaker
    image_uri: str | None = None
    #: s3://bucket/key/model.tar.gz from ``bundle export sagemaker``; None serves the artifacts in the image
    model_data: str | None = None
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    #: default: the bundle's name
    endpoint_name: str | None = None
    region: str | None = None
    #: another endpoint for every AWS API (also AWS_ENDPOINT_URL): VPC endpoints, emulators
    endpoint_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    wait: bool = True
    timeout: float = DEFAULT_TIMEOUT
    poll_seconds: float = DEFAULT_POLL_SECONDS


@dataclass(frozen=True)
class Deployment:
    model_name: str
    endpoint_config_name: str
    endpoint_name: str
    endpoint_arn: str
    image_uri: str
    #: InService when waited for, else what SageMaker said last (Creating, Updating)
    status: str
    #: True when the endpoint existed and was updated
    updated: bool


def deploy_sagemaker(bundle: StoredBundle, options: DeployOptions, reporter: Reporter | None = None) -> Deployment:
    """Create (or update) the endpoint serving ``bundle`` and, with ``options.wait``, wait until it is InService."""
    reporter = reporter or Reporter(quiet=True)
    _check_options(options)
    session = _session(options)
    sagemaker = _client(session, "sagemaker", options)
    image_uri = options.image_uri or _default_image_uri(bundle, session, options)
    if options.model_data is not None:
        _check_model_data(_client(session, "s3", options), options.model_data)
    manifest = bundle.manifest
    environment = dict(options.environment)
    container: dict[str, Any] = {"Image": image_uri, "Environment": environment} if environment else {"Image": image_uri}
    if options.model_data is not None:
        container["ModelDataUrl"] = options.model_data
    base = _name(f"{manifest.name}-{manifest.version}", 48)
    model_name = f"{base}-{_digest(image_uri, options.model_data, options.role, sorted(environment.items()))}"
    config_name = f"{model_name[:53]}-{_digest(model_name, options.instance_type, options.instance_count)}"
    endpoint_name = options.endpoint_name or _name(manifest.name, 63)
    tags = [{"Key": "modelbundle:bundle", "Value": manifest.tag}]

    with _aws_errors("CreateModel"):
        if not _exists(sagemaker.describe_model, ModelName=model_name):
            reporter.info(f"creating model {model_name} ({image_uri})")
            sagemaker.create_model(ModelName=model_name, PrimaryContainer=container, ExecutionRoleArn=options.role, Tags=tags)
    with _aws_errors("CreateEndpointConfig"):
        if not _exists(sagemaker.describe_endpoint_config, EndpointConfigName=config_name):
            reporter.info(f"creating endpoint configuration {config_name} ({options.instance_count} x {options.instance_type})")
            sagemaker.create_endpoint_config(
                EndpointConfigName=config_name,
                ProductionVariants=[{
                    "VariantName": "AllTraffic", "ModelName": model_name, "InitialInstanceCount": options.instance_count,
                    "InstanceType": options.instance_type, "InitialVariantWeight": 1.0,
                }],
                Tags=tags,
            )  # fmt: skip
    with _aws_errors("CreateEndpoint"):
        updated = _exists(sagemaker.describe_endpoint, EndpointName=endpoint_name)
        if updated:
            reporter.info(f"updating endpoint {endpoint_name} to {config_name}")
            arn = sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)["EndpointArn"]
        else:
            reporter.info(f"creating endpoint {endpoint_name}")
            arn = sagemaker.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=tags)["EndpointArn"]
    status = "Updating" if updated else "Creating"
    if options.wait:
        with _aws_errors("DescribeEndpoint"):
            status = wait_for_endpoint(
                lambda: sagemaker.describe_endpoint(EndpointName=endpoint_name), endpoint_name, reporter,
                timeout=options.timeout, poll_seconds=options.poll_seconds,
            )
    return Deployment(model_name, config_name, endpoint_name, str(arn), image_uri, status, updated)


def wait_for_endpoint(
    describe: Callable[[], Mapping[str, Any]],
    endpoint_name: str,
    reporter: Reporter,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``describe`` until the endpoint is InService (returned) or Failed (DeployError with SageMaker's reason)."""
    started = clock()
    last = None
    with reporter.step(f"waiting for endpoint {endpoint_name}..."):
        while True:
            answer = describe()
            status = str(answer.get("EndpointStatus", "?"))
            if status != last:
                reporter.info(f"endpoint {endpoint_name}: {status} after {clock() - started:.0f} s")
                last = status
            if status == "InService":
                return status
            if status in ("Failed", "OutOfService", "Deleting"):
                reason = answer.get("FailureReason") or "SageMaker gave no reason"
                raise DeployError(
                    f"endpoint {endpoint_name} is {status}: {reason}; its CloudWatch logs (/aws/sagemaker/Endpoints/"
                    f"{endpoint_name}) show what the container printed"
                )
            if clock() - started > timeout:
                raise DeployError(
                    f"endpoint {endpoint_name} is still {status} after {timeout:.0f} s; it may yet come up "
                    f"(aws sagemaker describe-endpoint --endpoint-name {endpoint_name}), or raise --timeout"
                )
            sleep(poll_seconds)


# -- helpers ----------------------------------------------------------------------------------------------------
def _check_options(options: DeployOptions) -> None:
    if not _ROLE.match(options.role):
        raise DeployError(f"--role {options.role!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    if options.instance_count < 1:
        raise DeployError("--instance-count must be at least 1")
    if not options.instance_type.startswith("ml."):
        raise DeployError(f"--instance-type {options.instance_type!r} is not a SageMaker instance type (e.g. {DEFAULT_INSTANCE_TYPE})")
    if options.endpoint_name is not None and not _NAME.match(options.endpoint_name):
        raise DeployError(f"--endpoint-name {options.endpoint_name!r}: up to 63 letters, digits and hyphens, not starting with a hyphen")
    if options.model_data is not None:
        url = urlparse(options.model_data)
        if url.scheme != "s3" or not url.netloc or not url.path.endswith(".tar.gz"):
            raise DeployError(
                f"--model-data {options.model_data!r} must be s3://BUCKET/KEY.tar.gz (bundle export sagemaker writes model.tar.gz)"
            )


def _session(options: DeployOptions) -> Any:
    try:
        import boto3
    except ImportError:
        raise DeployError("bundle deploy sagemaker needs boto3: pip install 'modelbundle[aws]'") from None
    return boto3.session.Session(region_name=options.region)


def _client(session: Any, service: str, options: DeployOptions) -> Any:
    if session.region_name is None:
        raise DeployError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
    return session.client(service, endpoint_url=options.endpoint_url)


def _default_image_uri(bundle: StoredBundle, session: Any, options: DeployOptions) -> str:
    with _aws_errors("GetCallerIdentity"):
        account = _client(session, "sts", options).get_caller_identity()["Account"]
    manifest = bundle.manifest
    return f"{account}.dkr.ecr.{session.region_name}.amazonaws.com/{manifest.name}:{manifest.version}-sagemaker"


def _check_model_data(s3: Any, url: str) -> None:
    parsed = urlparse(url)
    import botocore.exceptions

    try:
        s3.head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise DeployError(
                f"no object at {url}; upload the model.tar.gz of bundle export sagemaker there (aws s3 cp model.tar.gz {url})"
            ) from None
        raise _translate(exc, "HeadObject") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise _translate(exc, "HeadObject") from None


def _exists(describe: Callable[..., Any], **names: str) -> bool:
    import botocore.exceptions

    try:
        describe(**names)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationException" and "could not find" in str(error.get("Message", "")).lower():
            return False
        raise
    return True


@contextlib.contextmanager
def _aws_errors(operation: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into one-line DeployErrors naming the operation."""
    import botocore.exceptions

    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise _translate(exc, operation) from None


def _translate(exc: Exception, operation: str) -> DeployError:
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", None) or operation
        message = " ".join(str(error.get("Message", "")).split())
        return DeployError(f"SageMaker deploy: {operation} failed: {error.get('Code', '?')}: {message}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return DeployError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return DeployError(f"cannot reach AWS for {operation}: {exc}")
    return DeployError(f"SageMaker deploy: {operation} failed: {' '.join(str(exc).split())}")


def _name(text: str, limit: int) -> str:
    """A SageMaker resource name: letters, digits, single hyphens, at most ``limit`` characters."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-")[:limit].rstrip("-")
    return cleaned or "bundle"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:8]
