"""The plain Kubernetes objects: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget.

Each builder returns a dict ready for YAML. The Deployment's selector holds only
the labels that never change between bundle versions (name and instance), since
a selector is immutable once applied.
"""

from __future__ import annotations

from typing import Any

from ._options import (
    API_KEYS_DIR,
    API_KEYS_FILE,
    HOME_DIR,
    JOBS_DIR,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    RUN_AS_USER,
    SERVER_PORT,
    STARTUP_PERIOD_SECONDS,
    Plan,
)
from ._weights import (
    fetch_container,
    weights_claim_name,
    weights_mount,
    weights_volume,
    weights_volume_claim,
)

Manifest = dict[str, Any]
CONTAINER_NAME = "server"
PORT_NAME = "http"
#: the port the Service offers inside the cluster (http://NAME.NAMESPACE/)
SERVICE_PORT = 80
TMP_VOLUME = "tmp"
HOME_VOLUME = "home"
JOBS_VOLUME = "jobs"
API_KEYS_VOLUME = "api-keys"


def metadata(plan: Plan, *, name: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name or plan.name}
    if plan.namespace:
        meta["namespace"] = plan.namespace
    meta["labels"] = dict(plan.labels)
    meta["annotations"] = {**plan.annotations, **(annotations or {})}
    return meta


def _probe(path: str, port: int | str, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def probes(plan: Plan, port: int | str, *, startup: bool = True) -> dict[str, Any]:
    """liveness on /livez, readiness on /readyz and, while models load, a startup probe on /readyz.

    The server binds before setup() runs and connections wait in the backlog until
    a worker accepts, so a probe during loading times out: the startup probe's
    budget (failureThreshold x period) covers the loading, and liveness starts after it.
    """
    result = {
        # generous: a worker busy with a big batch still answers /livez from its event loop, maybe late
        "livenessProbe": _probe(LIVENESS_PATH, port, period=10, timeout=5, failures=6),
        # quick to take a pod out: a stopping server turns /readyz to 503 at once
        "readinessProbe": _probe(READINESS_PATH, port, period=5, timeout=3, failures=2),
    }
    if startup:
        result["startupProbe"] = _probe(
            READINESS_PATH, port, period=STARTUP_PERIOD_SECONDS, timeout=3, failures=plan.startup_failure_threshold
        )
    return result


def container(plan: Plan, *, name: str = CONTAINER_NAME, port_name: str = PORT_NAME, startup_probe: bool = True,
              prestop: bool = True, extra_env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The server container: the image's entrypoint (``bundle serve /opt/bundle``), configured by env vars."""
    spec: dict[str, Any] = {
        "name": name,
        "image": plan.image,
        "imagePullPolicy": plan.image_pull_policy,
        "ports": [{"name": port_name, "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "env": [*plan.env, *(extra_env or [])],
        "resources": {"requests": dict(plan.requests), "limits": dict(plan.limits)},
        **probes(plan, SERVER_PORT, startup=startup_probe),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # the server writes to /tmp (Prometheus multiprocess files, spooled bodies); a model library may write
        # under $HOME (~/.cache, ~/.config): both writable, as in `docker run`, while the root stays read-only
        "volumeMounts": [
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            {"name": HOME_VOLUME, "mountPath": HOME_DIR},
            *([{"name": JOBS_VOLUME, "mountPath": JOBS_DIR}] if plan.jobs_volume else []),
            *([{"name": API_KEYS_VOLUME, "mountPath": API_KEYS_DIR, "readOnly": True}] if plan.api_keys_secret else []),
            *([weights_mount()] if plan.weights and plan.weights.fetched else []),
        ],
    }
    if prestop and plan.prestop_sleep:
        # keep serving while endpoints and load balancers drop the pod; SIGTERM comes after this
        spec["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(plan.prestop_sleep)]}}}
    return spec


def pod_settings(plan: Plan) -> dict[str, Any]:
    """Pod-level fields shared by the Deployment and the KServe predictor."""
    return {
        "automountServiceAccountToken": False,  # the server never talks to the API server
        "enableServiceLinks": False,  # no injected NAME_PORT=tcp://... variables next to MODELBUNDLE_PORT
        "terminationGracePeriodSeconds": plan.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": plan.tmp_size}},
            {"name": HOME_VOLUME, "emptyDir": {"sizeLimit": plan.home_size}},
            *([{"name": JOBS_VOLUME, "persistentVolumeClaim": {"claimName": jobs_claim_name(plan)}}] if plan.jobs_volume else []),
            *([api_keys_volume(plan.api_keys_secret)] if plan.api_keys_secret else []),
            *([weights_volume(plan.weights, plan.name)] if plan.weights and plan.weights.fetched else []),
        ],
    }


def init_containers(plan: Plan, server: dict[str, Any]) -> dict[str, Any]:
    """``initContainers`` for the pod spec: the weights' fetch when the image does not hold them (else nothing)."""
    if plan.weights is None or not plan.weights.fetched:
        return {}
    return {"initContainers": [fetch_container(server, plan.weights, plan.weights_secret)]}


def api_keys_volume(secret: tuple[str, str]) -> dict[str, Any]:
    """The Secret's key file as one read-only file; the probes (/livez, /readyz) need no key."""
    name, key = secret
    return {
        "name": API_KEYS_VOLUME,
        "secret": {"secretName": name, "items": [{"key": key, "path": API_KEYS_FILE}], "defaultMode": 0o440},
    }


def scrape_annotations(port: int = SERVER_PORT) -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": METRICS_PATH}


def deployment(plan: Plan) -> Manifest:
    server = container(plan)
    spec: dict[str, Any] = {}
    if plan.replicas is not None:  # with an HPA the count is left to it: re-applying must not reset it
        spec["replicas"] = plan.replicas
    spec.update(
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": dict(plan.selector)},
            # a new pod must be ready (models loaded) before an old one goes; but a jobs volume belongs to one
            # server at a time (it takes the running jobs it finds there for orphans), so the old pod goes first
            "strategy": {"type": "Recreate"} if plan.jobs_volume
            else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": dict(plan.labels),
                    "annotations": {**plan.annotations, **scrape_annotations()},
                },
                "spec": {**pod_settings(plan), **init_containers(plan, server), "containers": [server]},
            },
        }
    )
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(plan), "spec": spec}


def service(plan: Plan, port: int = SERVICE_PORT) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(plan),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(plan.selector),
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def horizontal_pod_autoscaler(plan: Plan) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(plan),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
            "minReplicas": plan.min_replicas,
            "maxReplicas": plan.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": plan.target_cpu}},
                }
            ],
        },
    }


def pod_disruption_budget(plan: Plan) -> Manifest:
    # maxUnavailable, not minAvailable: with one replica a drain still proceeds
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(plan),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(plan.selector)}},
    }


def jobs_claim_name(plan: Plan) -> str:
    return f"{plan.name}-jobs"


def jobs_volume_claim(plan: Plan) -> Manifest:
    """The jobs queue's volume (``--jobs-volume``): one replica's, so ReadWriteOnce."""
    assert plan.jobs_volume is not None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(plan, name=jobs_claim_name(plan)),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": plan.jobs_volume}}},
    }


def kubernetes_manifests(plan: Plan) -> dict[str, Manifest]:
    """File name -> object, for ``bundle export kubernetes``."""
    files = {"deployment.yaml": deployment(plan), "service.yaml": service(plan)}
    if plan.jobs_volume:
        files["jobs-pvc.yaml"] = jobs_volume_claim(plan)
    if plan.weights is not None and plan.weights.volume is not None:
        claim = metadata(plan, name=weights_claim_name(plan.name))
        files["weights-pvc.yaml"] = weights_volume_claim(plan.weights, claim, plan.replicas)
    if plan.replicas is None:
        files["hpa.yaml"] = horizontal_pod_autoscaler(plan)
    files["pdb.yaml"] = pod_disruption_budget(plan)
    return files
