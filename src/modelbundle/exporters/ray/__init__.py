"""Ray Serve: a Ray node image of a bundle (``bundle containerize --target ray``) and ``bundle deploy ray``.

``deploy_ray`` deploys a bundle as a Serve application through the Serve REST
API on the dashboard port (no Ray needed on this machine); each replica runs
the bundle's own app (``_replica.py``, which only runs inside Ray).
"""

from __future__ import annotations

from ._deploy import (
    DEFAULT_ADDRESS,
    DEFAULT_MAX_ONGOING_REQUESTS,
    DEFAULT_MAX_SURGE_PERCENT,
    RayDeployment,
    RayDeployOptions,
    application_config,
    bundle_package,
    dashboard_url,
    deploy_ray,
    serve_config,
)
from ._image import (
    DASHBOARD_PORT,
    GCS_PORT,
    RAY_REQUIREMENT,
    RAY_TARGET,
    SERVE_HTTP_PORT,
    ray_recipe,
)
from ._replica import APP_BUILDER, NODE_HEADER, REPLICA_HEADER, ReplicaArgs

__all__ = [
    "APP_BUILDER",
    "DASHBOARD_PORT",
    "DEFAULT_ADDRESS",
    "DEFAULT_MAX_ONGOING_REQUESTS",
    "DEFAULT_MAX_SURGE_PERCENT",
    "GCS_PORT",
    "NODE_HEADER",
    "RAY_REQUIREMENT",
    "RAY_TARGET",
    "REPLICA_HEADER",
    "SERVE_HTTP_PORT",
    "RayDeployOptions",
    "RayDeployment",
    "ReplicaArgs",
    "application_config",
    "bundle_package",
    "dashboard_url",
    "deploy_ray",
    "ray_recipe",
    "serve_config",
]
