"""``bundle export kubernetes`` and ``bundle export kserve``: manifests for an image of a bundle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _manifest_options(func: F) -> F:
    """The options both commands share; every default is None so the library's defaults apply."""
    options = [
        click.argument("ref", metavar="NAME[:VERSION]"),
        click.option("--image", required=True, help="The bundle's image, e.g. registry.example.com/iris:1a2b3c (see bundle containerize)."),
        click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Directory to write the YAML files to (new, empty, or holding an earlier export)."),
        click.option("--name", default=None, help="Name of the resources. [default: from the bundle name]"),
        click.option("--namespace", default=None, help="metadata.namespace. [default: none; kubectl -n decides]"),
        click.option("--min-replicas", type=int, default=None, help="Autoscaling lower bound. [default: 2]"),
        click.option("--max-replicas", type=int, default=None, help="Autoscaling upper bound. [default: 5]"),
        click.option("--target-cpu", type=int, default=None, help="CPU use (%% of the request) autoscaling aims for. [default: 70]"),
        click.option("--cpu", default=None, help="CPU request, e.g. 500m or 2. [default: 1]"),
        click.option("--cpu-limit", default=None, help="CPU limit. [default: none]"),
        click.option("--memory", default=None, help="Memory request, e.g. 2Gi. [default: from the artifacts' size]"),
        click.option("--memory-limit", default=None, help="Memory limit. [default: the request]"),
        click.option("--workers", type=int, default=None, help="Server worker processes per pod. [default: 1]"),
        click.option("--graceful-timeout", type=float, default=None,
                     help="Seconds a stopping server drains accepted requests. [default: 30]"),
        click.option("--startup-timeout", type=int, default=None,
                     help="Seconds allowed until /readyz is 200. [default: 60 + 1 per 20 MiB of artifacts]"),
        click.option("--prestop-sleep", type=int, default=None, help="Seconds a stopping pod keeps serving first. [default: 5]"),
        click.option("--tmp-size", default=None, help="Size limit of the /tmp emptyDir. [default: 1Gi]"),
        click.option("--home-size", default=None, help="Size limit of the $HOME emptyDir (~/.cache). [default: 1Gi]"),
        click.option("--api-keys-secret", default=None, metavar="NAME[:KEY]",
                     help="Callers need an API key from this Secret's KEY, a key file (one key or name:sha256 a line) "
                     "[default key: api-keys]; probes and /metrics stay open."),
        click.option("--weights", type=click.Choice(["baked", "fetch"]), default=None,
                     help="Referenced weights: in the image, or fetched by an init container into a volume. "
                     "[default: the image's (containerize --weights)]"),
        click.option("--weights-volume", default=None, metavar="SIZE",
                     help="Fetched weights on a PersistentVolumeClaim of SIZE, kept across pods. [default: an emptyDir]"),
        click.option("--weights-secret", default=None, metavar="NAME",
                     help="A Secret whose keys are the env of the weights' fetch (e.g. AWS_ACCESS_KEY_ID)."),
        click.option("--validate/--no-validate", default=None,
                     help="Check every object against the Kubernetes schemas. [default: on if kubernetes-validate is installed]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(kind: str, ref: str, output: Path, validate: bool | None, flags: dict[str, Any]) -> None:
    from ..bundler import LocalStore
    from ..exporters import kubernetes

    options = kubernetes.KubernetesOptions.from_flags(**flags)
    bundle = LocalStore().get(ref)
    check = kubernetes.validation_available() if validate is None else validate
    export = kubernetes.export_kserve if kind == "kserve" else kubernetes.export_kubernetes
    result = export(bundle, output, options, validate=check)
    for warning in result.warnings:
        click.echo(warning, err=True)
    for name, obj in result.objects.items():
        click.echo(f"{output / name}: {obj['kind']} {obj['metadata']['name']}")
    if result.validated:
        click.echo(f"valid against Kubernetes {', '.join(result.validated)} (strict)")


@click.command(name="kubernetes")
@_manifest_options
@click.option("--replicas", type=int, default=None, help="A fixed number of replicas instead of autoscaling.")
@click.option("--jobs-volume", default=None, metavar="SIZE",
              help="A PersistentVolumeClaim of SIZE (e.g. 10Gi) for the jobs queue, at /var/lib/modelbundle/jobs; one replica.")
@click.option("--jobs-url-secret", default=None, metavar="NAME[:KEY]",
              help="The jobs queue on PostgreSQL: its URL from this Secret's KEY [default key: url], for every replica.")
def export_kubernetes(ref: str, output: Path, validate: bool | None, **flags: Any) -> None:
    """Write a Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget for an image of the bundle."""
    _run("kubernetes", ref, output, validate, flags)


@click.command(name="kserve")
@_manifest_options
@click.option("--deployment-mode", type=click.Choice(["RawDeployment", "Serverless"]), default=None,
              help="KServe's deployment mode. [default: RawDeployment]")
def export_kserve(ref: str, output: Path, validate: bool | None, **flags: Any) -> None:
    """Write a KServe InferenceService (Open Inference Protocol v2) whose predictor runs an image of the bundle."""
    _run("kserve", ref, output, validate, flags)
