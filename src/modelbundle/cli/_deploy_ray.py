"""``bundle deploy ray``: a bundle as a Ray Serve application on a running cluster."""

from __future__ import annotations

import click

from ._options import parse_pairs


def _autoscale(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition(",")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise click.BadParameter(f"{value!r} is not MIN,MAX (e.g. 1,4)")
    return int(low), int(high)


def _serve_options(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = parse_pairs(values, "OPTION=VALUE (a bundle serve option, e.g. timeout=30)")
    return {key.replace("-", "_"): text for key, text in pairs.items()}


@click.command(name="ray")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--address", envvar="RAY_DASHBOARD_ADDRESS", default="http://127.0.0.1:8265", show_default=True,
              help="The cluster's dashboard (Serve REST API), http://HEAD:8265 (also RAY_DASHBOARD_ADDRESS).")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True, help="How many replicas serve the bundle.")
@click.option("--autoscale", callback=_autoscale, metavar="MIN,MAX", help="Let Serve scale between MIN and MAX replicas instead.")
@click.option("--name", default=None, help="The application's name. [default: the bundle's name]")
@click.option("--route-prefix", default="/", show_default=True, help="Where Ray's HTTP proxy routes to the application.")
@click.option("--from-image", is_flag=True, help="Serve the bundle in the nodes' image (/opt/bundle) instead of shipping it with the deploy.")
@click.option("--num-cpus", type=float, default=1.0, show_default=True, help="CPUs Ray reserves for each replica.")
@click.option("--max-ongoing-requests", type=click.IntRange(min=1), default=64, show_default=True, help="Requests a replica takes at once (they batch together).")
@click.option("--max-surge", type=click.IntRange(0, 100), default=25, show_default=True, metavar="PERCENT",
              help="Extra replicas while a new version rolls out (new ones start before old ones stop); 0 stops first.")
@click.option("--serve-option", "serve", multiple=True, callback=_serve_options, metavar="OPTION=VALUE",
              help="A bundle serve option for each replica, e.g. timeout=30 or batching=false (repeatable).")
@click.option("--auth-token", envvar="RAY_AUTH_TOKEN", default=None, help="The cluster's token when it runs with RAY_AUTH_MODE=token (also RAY_AUTH_TOKEN).")
@click.option("--no-wait", is_flag=True, help="Return once the cluster accepted the new config.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to wait for every replica to run.")
@click.option("--quiet", "-q", is_flag=True, help="Print only warnings and the result.")
def deploy_ray(
    ref: str, address: str, replicas: int, autoscale: tuple[int, int] | None, name: str | None, route_prefix: str,
    from_image: bool, num_cpus: float, max_ongoing_requests: int, max_surge: int, serve: dict[str, str], auth_token: str | None,
    no_wait: bool, timeout: float, quiet: bool,
) -> None:
    """Deploy a bundle (or roll out a new version of it) as a Ray Serve application.

    The cluster's nodes run an image made by `bundle containerize NAME --target ray`;
    this machine needs no Ray. Each replica runs the bundle's own server in-process
    (same routes, errors and micro-batching as bundle serve) behind Ray's HTTP proxy.
    """
    from ..bundler import LocalStore, Reporter
    from ..exporters.ray import RayDeployOptions
    from ..exporters.ray import deploy_ray as run

    bundle = LocalStore().get(ref)
    options = RayDeployOptions(
        address=address, replicas=replicas, autoscale=autoscale, name=name, route_prefix=route_prefix,
        source="image" if from_image else "shipped", num_cpus=num_cpus, max_ongoing_requests=max_ongoing_requests,
        max_surge_percent=max_surge, serve=serve, auth_token=auth_token, wait=not no_wait, timeout=timeout,
    )
    result = run(bundle, options, Reporter(quiet))
    shipped = "" if result.package is None else (" (bundle uploaded)" if result.uploaded else " (bundle already on the cluster)")
    click.echo(
        f"deployed {bundle.tag} as {result.app_name} on Ray {result.ray_version}: {result.status}, "
        f"{result.replicas} replicas{shipped} in {result.seconds:.1f} s"
    )
