"""``bundle deploy ray``: a bundle as a Ray Serve application, through the Serve REST API on the dashboard port.

No Ray is needed on this machine, so its version never has to match the
cluster's (Ray Client would need both). The steps:

1. ``GET /api/version``: the dashboard answers (and says which Ray it runs);
2. the bundle, zipped with fixed times and modes, is uploaded once to the
   cluster's GCS (``PUT /api/packages/gcs/_ray_pkg_<digest>.zip``, the route Ray's
   job submission uses) and becomes the application's ``working_dir``; a package
   already there is not sent again. With ``source="image"`` nothing is shipped:
   replicas serve the image's /opt/bundle;
3. ``PUT /api/serve/applications/`` with the cluster's other applications as
   they are deployed and this one added or replaced (the endpoint is declarative:
   an application left out would be deleted). A new version of a deployed
   application is a code change to Serve, which replaces replicas a few at a
   time (20 %), each new one started before an old one stops (``max_surge_percent``);
4. poll ``GET /api/serve/applications/`` until the application runs this
   bundle with every replica up, or failed (its message is the error).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._install_hints import needs_build_tool
from ...bundler import RECORD_FILE, Reporter, StoredBundle, read_record
from ...errors import DeployError
from ._replica import APP_BUILDER, ReplicaArgs

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_HTTP_PORT = 8000
#: requests a replica takes at once (Serve's default, 5, would starve the micro-batcher)
DEFAULT_MAX_ONGOING_REQUESTS = 64
DEFAULT_GRACEFUL_SHUTDOWN_S = 20.0
#: extra replicas during a rollout, in percent of the count (rounded up): new replicas start before
#: old ones stop, so a rollout never serves with fewer replicas (Serve's default, 0, stops first)
DEFAULT_MAX_SURGE_PERCENT = 25
#: Ray keeps packages in the GCS, whose values are bounded by its gRPC message size (512 MiB)
MAX_PACKAGE_BYTES = 500 * 1024 * 1024
#: a zip entry's time (1980-01-01, the oldest a zip holds): the same bundle gives the same package
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_POLL_S = 0.5
#: the line of a Python traceback that says what was raised
_RAISED = re.compile(r"^[\w.]*(Error|Exception|Exit)\b(\(\w+\))?: ")


@dataclass(frozen=True)
class RayDeployOptions:
    """How ``bundle deploy ray`` deploys: flag, option and field share a name."""

    address: str = DEFAULT_ADDRESS
    replicas: int = 1
    #: (min, max) replicas: Serve's autoscaling instead of a fixed count
    autoscale: tuple[int, int] | None = None
    #: the application's name (default: the bundle's name)
    name: str | None = None
    route_prefix: str = "/"
    #: "shipped" (the bundle goes to the cluster with the deploy) or "image" (/opt/bundle of the nodes' image)
    source: str = "shipped"
    num_cpus: float = 1.0
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    graceful_shutdown_s: float = DEFAULT_GRACEFUL_SHUTDOWN_S
    #: 0 (Serve's own default, and the only choice before Ray 2.60): stop old replicas before starting new ones
    max_surge_percent: int = DEFAULT_MAX_SURGE_PERCENT
    #: ``bundle serve`` options for the app in each replica (ServeConfig field -> value)
    serve: Mapping[str, Any] = field(default_factory=dict)
    #: sent as ``Authorization: Bearer`` (clusters started with RAY_AUTH_MODE=token)
    auth_token: str | None = None
    wait: bool = True
    timeout: float = 600.0


@dataclass(frozen=True)
class RayDeployment:
    """What the deploy did and where the application stands."""

    app_name: str
    deployment: str
    status: str
    replicas: int
    ray_version: str
    #: the working_dir package (None with source="image")
    package: str | None
    #: whether this deploy uploaded the package (False: the cluster had it)
    uploaded: bool
    seconds: float


def deploy_ray(bundle: StoredBundle, options: RayDeployOptions, reporter: Reporter) -> RayDeployment:
    """Deploy (or roll out a new version of) ``bundle`` as a Serve application on the cluster at ``options.address``."""
    try:
        import httpx
    except ImportError:
        raise DeployError(needs_build_tool("bundle deploy ray", "httpx")) from None

    _check_options(options)
    started = time.perf_counter()
    manifest = bundle.manifest
    app_name = options.name or manifest.name
    headers = {"Authorization": f"Bearer {options.auth_token}"} if options.auth_token else {}
    with httpx.Client(base_url=dashboard_url(options.address), headers=headers, timeout=60.0) as client:
        ray_version = _ray_version(client)
        package, uploaded = None, False
        if options.source == "shipped":
            package, uploaded = _ship(client, bundle, reporter)
        app = application_config(bundle, options, app_name, package)
        current = _request(client, "GET", "/api/serve/applications/").json()
        reporter.info(f"deploying {manifest.tag} as application {app_name!r} on Ray {ray_version} at {options.address}")
        _request(client, "PUT", "/api/serve/applications/", json=serve_config(current, app))
        if not options.wait:
            return RayDeployment(app_name, manifest.name, "DEPLOYING", 0, ray_version, package, uploaded, time.perf_counter() - started)
        with reporter.step(f"waiting for {app_name} to run {manifest.tag}..."):
            status, replicas = wait_for_application(client, app_name, app["args"]["digest"], options.timeout)
    return RayDeployment(app_name, manifest.name, status, replicas, ray_version, package, uploaded, time.perf_counter() - started)


def dashboard_url(address: str) -> str:
    """``http://HEAD:8265`` from ``HEAD:8265``, ``HEAD`` or a full URL; Ray Client addresses are refused."""
    if address.startswith("ray://"):
        raise DeployError(
            f"{address} is a Ray Client address; bundle deploy ray talks to the Serve REST API on the "
            "dashboard port instead: --address http://HEAD:8265"
        )
    if "://" not in address:
        address = f"http://{address}"
    scheme, _, rest = address.partition("://")
    if scheme not in ("http", "https"):
        raise DeployError(f"--address must be http(s)://HEAD:8265, not {address}")
    host = rest.split("/", 1)[0]
    if ":" not in host.rsplit("]", 1)[-1]:
        host += ":8265"
    return f"{scheme}://{host}"


def bundle_package(bundle: StoredBundle) -> tuple[str, bytes]:
    """The bundle as a Ray working_dir package: (``_ray_pkg_<sha256>.zip``, the zip), the same bytes every time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in sorted([*read_record(bundle.path), RECORD_FILE]):
            info = zipfile.ZipInfo(relative, _ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (bundle.path / relative).read_bytes())
    data = buffer.getvalue()
    return f"_ray_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip", data


def application_config(bundle: StoredBundle, options: RayDeployOptions, app_name: str, package: str | None) -> dict[str, Any]:
    """One entry of the Serve config's ``applications``: our builder, this bundle, its replicas."""
    from ..docker import bundle_digest

    manifest = bundle.manifest
    args = ReplicaArgs(
        deployment=manifest.name, name=manifest.name, version=manifest.version, digest=bundle_digest(bundle),
        source="shipped" if package else "image", serve=dict(options.serve),
    )
    deployment: dict[str, Any] = {
        "name": manifest.name,
        "max_ongoing_requests": options.max_ongoing_requests,
        "graceful_shutdown_timeout_s": options.graceful_shutdown_s,
        "ray_actor_options": {"num_cpus": options.num_cpus},
    }
    if options.max_surge_percent:  # left out at 0, so clusters older than Ray 2.60 take the config
        deployment["max_surge_percent"] = options.max_surge_percent
    if options.autoscale is not None:
        low, high = options.autoscale
        deployment["autoscaling_config"] = {"min_replicas": low, "initial_replicas": max(low, 1), "max_replicas": high}
    else:
        deployment["num_replicas"] = options.replicas
    app: dict[str, Any] = {
        "name": app_name,
        "route_prefix": options.route_prefix,
        "import_path": APP_BUILDER,
        "args": args.model_dump(),
        "deployments": [deployment],
    }
    if package is not None:
        app["runtime_env"] = {"working_dir": f"gcs://{package}"}
    return app


def serve_config(current: Mapping[str, Any], app: Mapping[str, Any]) -> dict[str, Any]:
    """The whole cluster's Serve config: the deployed applications as they are, ``app`` added or replaced."""
    others = [
        details["deployed_app_config"]
        for name, details in sorted((current.get("applications") or {}).items())
        if name != app["name"] and details.get("deployed_app_config")
    ]
    http = current.get("http_options") or {}
    running = bool((current.get("controller_info") or {}).get("actor_id"))
    config: dict[str, Any] = {
        # the proxy listens on every interface of every node with a replica; HTTP options are
        # fixed once Serve runs, so a running cluster keeps its own
        "proxy_location": current.get("proxy_location") or "EveryNode",
        "http_options": {"host": http.get("host", "0.0.0.0"), "port": http.get("port", DEFAULT_HTTP_PORT)}
        if running
        else {"host": "0.0.0.0", "port": DEFAULT_HTTP_PORT},
        "applications": [*others, dict(app)],
    }
    return config


def wait_for_application(client: Any, app_name: str, digest: str, timeout: float) -> tuple[str, int]:
    """Poll until ``app_name`` runs the bundle with ``digest`` on all its replicas: (status, replicas)."""
    deadline = time.monotonic() + timeout
    last = "not deployed yet"
    while time.monotonic() < deadline:
        details = (_request(client, "GET", "/api/serve/applications/").json().get("applications") or {}).get(app_name)
        if details is not None and (details.get("deployed_app_config") or {}).get("args", {}).get("digest") == digest:
            status = details.get("status", "")
            deployments = details.get("deployments") or {}
            running = sum(1 for d in deployments.values() for r in d.get("replicas", []) if r.get("state") == "RUNNING")
            if status == "RUNNING" and all(d.get("status") == "HEALTHY" for d in deployments.values()):
                return status, running
            if status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise DeployError(f"application {app_name} is {status}: {_failure(details)}")
            last = f"{status}, {running} replicas running"
        time.sleep(_POLL_S)
    raise DeployError(f"application {app_name} did not run within {timeout:.0f} s ({last}); see the replica logs (ray logs) on the cluster")


def _failure(details: Mapping[str, Any]) -> str:
    """The reason in Ray's status messages, in one line: the last ``SomeError: text`` of a traceback, else the message."""
    messages = [details.get("message") or ""]
    messages += [d.get("message") or "" for d in (details.get("deployments") or {}).values()]
    reasons = []
    for message in messages:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        if not lines:
            continue
        raised = [line for line in lines if _RAISED.match(line)]
        reasons.append(raised[-1] if raised else lines[-1])
    return " | ".join(dict.fromkeys(reasons))[-1500:] or "no message"


def _ship(client: Any, bundle: StoredBundle, reporter: Reporter) -> tuple[str, bool]:
    name, data = bundle_package(bundle)
    if len(data) > MAX_PACKAGE_BYTES:
        raise DeployError(
            f"{bundle.tag} zips to {len(data) / 2**20:.0f} MiB, more than Ray keeps in its GCS ({MAX_PACKAGE_BYTES // 2**20} MiB); "
            "deploy it from the image instead (--from-image, on nodes running `bundle containerize --target ray`)"
        )
    path = f"/api/packages/gcs/{name}"
    if _request(client, "GET", path, allow=(404,)).status_code == 200:  # the GET also pins it for a while
        return name, False
    with reporter.step(f"uploading {bundle.tag} to the cluster ({len(data) / 2**20:.1f} MiB)..."):
        _request(client, "PUT", path, content=data)
    return name, True


def _ray_version(client: Any) -> str:
    body = _request(client, "GET", "/api/version").json()
    return str(body.get("ray_version", "?"))


def _request(client: Any, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any) -> Any:
    """One call to the dashboard; transport errors and error statuses become a DeployError naming the call."""
    import httpx

    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise DeployError(f"{method} {client.base_url}{path} failed: {type(exc).__name__}: {exc}; is the Ray dashboard there?") from exc
    if response.status_code >= 400 and response.status_code not in allow:
        hint = " (the cluster wants a token: --auth-token or RAY_AUTH_TOKEN)" if response.status_code in (401, 403) else ""
        raise DeployError(f"{method} {path} answered {response.status_code}{hint}: {response.text.strip()[-1500:]}")
    return response


def _check_options(options: RayDeployOptions) -> None:
    if options.source not in ("shipped", "image"):
        raise DeployError(f"source must be 'shipped' or 'image', not {options.source!r}")
    if options.autoscale is not None:
        low, high = options.autoscale
        if not 0 <= low <= high or high < 1:
            raise DeployError(f"--autoscale {low},{high}: need 0 <= MIN <= MAX and MAX >= 1")
    elif options.replicas < 1:
        raise DeployError(f"--replicas must be at least 1, not {options.replicas}")
    if not 0 <= options.max_surge_percent <= 100:
        raise DeployError(f"--max-surge must be a percentage from 0 to 100, not {options.max_surge_percent}")
    if not options.route_prefix.startswith("/"):
        raise DeployError(f"--route-prefix must start with '/', not {options.route_prefix!r}")
