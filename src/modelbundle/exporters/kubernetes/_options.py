"""``KubernetesOptions``: what ``bundle export kubernetes|kserve`` takes, and the plan resolved from it and a bundle.

Resources come from these options, not from the Service class: a bundle does not
record resources, and the defaults below are derived from what it does record
(the size of its artifacts).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...bundler import StoredBundle, read_record
from ...errors import ExportError
from ._names import (
    LABEL_PREFIX,
    check_image,
    check_resource_name,
    image_pinned,
    label_value,
    resource_name,
)
from ._quantity import MIB, mebibytes, parse_quantity
from ._weights import PodWeights, pod_weights

#: what the images of ``bundle containerize`` do; the runtime's ServeConfig defaults (a test keeps them equal)
SERVER_PORT = 3000
DEFAULT_GRACEFUL_TIMEOUT = 30.0
RUN_AS_USER = 10001
#: the image's $HOME: writable in the pod (an emptyDir), as in `docker run`, for libraries that cache under ~/.cache
HOME_DIR = "/home/bundle"
LIVENESS_PATH, READINESS_PATH, METRICS_PATH = "/livez", "/readyz", "/metrics"
#: where --jobs-volume mounts its PersistentVolumeClaim, handed to the server as --jobs-dir
JOBS_DIR = "/var/lib/modelbundle/jobs"
#: the key of the --jobs-url-secret Secret that holds the PostgreSQL URL (NAME:KEY picks another)
JOBS_URL_SECRET_KEY = "url"
#: the key of the --api-keys-secret Secret that holds the key file (NAME:KEY picks another)
API_KEYS_SECRET_KEY = "api-keys"
#: where that key file is mounted, handed to the server as --api-key-file
API_KEYS_DIR = "/etc/modelbundle/api-keys"
API_KEYS_FILE = "keys"

DEFAULT_CPU = "1"
DEFAULT_MIN_REPLICAS = 2
DEFAULT_MAX_REPLICAS = 5
DEFAULT_TARGET_CPU = 70
DEFAULT_PRESTOP_SLEEP = 5
DEFAULT_TMP_SIZE = "1Gi"
DEFAULT_HOME_SIZE = "1Gi"
#: memory: the supervisor, then per worker Python + numpy + FastAPI and twice the artifacts (file + loaded object)
_BASE_MEMORY, _WORKER_MEMORY = 256 * MIB, 256 * MIB
#: startup: imports on a cold node, then artifacts read and deserialised at a pessimistic 20 MiB/s
_BASE_STARTUP_SECONDS, _LOAD_BYTES_PER_SECOND = 60, 20 * MIB
STARTUP_PERIOD_SECONDS = 5
#: seconds past preStop + drain before the kubelet's SIGKILL: the workers' teardown() and exit
_EXIT_MARGIN_SECONDS = 10

DeploymentMode = Literal["RawDeployment", "Serverless"]
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


class KubernetesOptions(BaseModel):
    """The options of ``bundle export kubernetes`` and ``bundle export kserve``; each flag has the field's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    #: the resources' name; default: derived from the bundle name
    name: str | None = None
    namespace: str | None = None
    #: a fixed number of replicas: no HorizontalPodAutoscaler
    replicas: int | None = Field(default=None, ge=1)
    min_replicas: int | None = Field(default=None, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)
    #: average CPU use, in percent of the request, that the autoscaler aims for
    target_cpu: int = Field(default=DEFAULT_TARGET_CPU, ge=1, le=1000)
    cpu: str | None = None
    cpu_limit: str | None = None
    memory: str | None = None
    memory_limit: str | None = None
    workers: int = Field(default=1, ge=1)
    graceful_timeout: float = Field(default=DEFAULT_GRACEFUL_TIMEOUT, ge=0)
    #: seconds the server may take until /readyz is 200; default: derived from the artifacts' size
    startup_timeout: int | None = Field(default=None, ge=1)
    #: seconds a stopping pod keeps serving so load balancers can take it out first (0: none)
    prestop_sleep: int = Field(default=DEFAULT_PRESTOP_SLEEP, ge=0)
    tmp_size: str = DEFAULT_TMP_SIZE
    #: the size limit of the emptyDir at $HOME (model caches such as ~/.cache/huggingface land there)
    home_size: str = DEFAULT_HOME_SIZE
    #: a PersistentVolumeClaim of this size for the jobs queue (SQLite: one replica owns it)
    jobs_volume: str | None = None
    #: a Secret (NAME or NAME:KEY) holding the jobs queue's PostgreSQL URL, shared by every replica
    jobs_url_secret: str | None = None
    #: a Secret (NAME or NAME:KEY) holding the server's API key file (``bundle serve --api-key-file``)
    api_keys_secret: str | None = None
    #: referenced weights: "baked" in the image, or "fetch"ed by an init container; default: the image's (``_weights.py``)
    weights: Literal["baked", "fetch"] | None = None
    #: fetched weights on a PersistentVolumeClaim of this size instead of an emptyDir
    weights_volume: str | None = None
    #: a Secret whose keys are the env of the weights' init container (the origin's credentials)
    weights_secret: str | None = None
    #: KServe only
    deployment_mode: DeploymentMode = "RawDeployment"

    @model_validator(mode="after")
    def _check(self) -> KubernetesOptions:
        check_image(self.image)
        if self.name is not None:
            check_resource_name(self.name)
        if self.namespace is not None:
            check_resource_name(self.namespace, "--namespace")
        if self.replicas is not None and (self.min_replicas is not None or self.max_replicas is not None):
            raise ExportError("--replicas (a fixed count) cannot be combined with --min-replicas/--max-replicas (autoscaling)")
        if self.jobs_volume is not None and self.jobs_url_secret is not None:
            raise ExportError("--jobs-volume (a queue on a volume) and --jobs-url-secret (a queue on PostgreSQL) are alternatives; give one")
        if self.jobs_volume is not None and (
            (self.replicas or 1) > 1 or self.min_replicas is not None or self.max_replicas is not None
        ):
            raise ExportError(
                "--jobs-volume keeps the jobs queue in one pod's volume, so it runs one replica; "
                "for several, put the queue on PostgreSQL with --jobs-url-secret"
            )
        for flag, secret_ref in (("--jobs-url-secret", self.jobs_url_secret), ("--api-keys-secret", self.api_keys_secret)):
            if secret_ref is not None:
                _check_secret_ref(secret_ref, flag)
        if self.weights_secret is not None:
            check_resource_name(self.weights_secret, "--weights-secret")
        for field in ("cpu", "cpu_limit", "memory", "memory_limit", "tmp_size", "home_size", "jobs_volume", "weights_volume"):
            value = getattr(self, field)
            if value is not None:
                parse_quantity(value, "--" + field.replace("_", "-"))
        return self

    @classmethod
    def from_flags(cls, **flags: Any) -> KubernetesOptions:
        """Options from CLI flags (None means not given); a bad value raises ``ExportError`` naming the flag."""
        try:
            return cls(**{key: value for key, value in flags.items() if value is not None})
        except ValidationError as exc:  # the checks in _check raise ExportError themselves
            error = exc.errors(include_url=False)[0]
            field = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
            raise ExportError(f"{field}: {error['msg']}") from None


def _check_secret_ref(ref: str, flag: str) -> None:
    """NAME or NAME:KEY, with a Secret's name and a Secret key's characters."""
    secret, _, key = ref.partition(":")
    check_resource_name(secret, flag)
    if ":" in ref and not _SECRET_KEY.fullmatch(key):
        raise ExportError(f"{flag} {ref!r}: the key after ':' must be letters, digits, '-', '_' or '.'")


@dataclass(frozen=True)
class Plan:
    """Every value the manifests need, resolved once from the options and the bundle."""

    name: str
    namespace: str | None
    image: str
    image_pull_policy: str
    labels: dict[str, str]
    selector: dict[str, str]
    annotations: dict[str, str]
    requests: dict[str, str]
    limits: dict[str, str]
    env: list[dict[str, Any]]
    replicas: int | None
    min_replicas: int
    max_replicas: int
    target_cpu: int
    startup_failure_threshold: int
    prestop_sleep: int
    termination_grace_seconds: int
    tmp_size: str
    home_size: str
    #: the jobs PersistentVolumeClaim's size (None: no claim)
    jobs_volume: str | None
    #: (Secret, key) of the API key file mounted at API_KEYS_DIR (None: no keys, every route open)
    api_keys_secret: tuple[str, str] | None
    deployment_mode: DeploymentMode
    #: the bundle's referenced weights (None: it references none)
    weights: PodWeights | None = None
    #: the Secret of the weights' init container's env (--weights-secret)
    weights_secret: str | None = None


def artifact_bytes(bundle: StoredBundle) -> int:
    """The size of the bundle's artifact files, from its RECORD."""
    return sum(size for path, (_, size) in read_record(bundle.path).items() if path.startswith("artifacts/"))


def plan(bundle: StoredBundle, options: KubernetesOptions, *, artifact_size: int | None = None, service: str | None = None) -> Plan:
    """Resolve names, labels, resources, probe budgets and replica counts for ``bundle``.

    ``artifact_size``: the bytes of artifacts the pods load (default: all of the bundle's;
    a composed bundle's service loads only its own share); ``service``: that service, whose
    referenced weights alone the pods fetch and load.
    """
    manifest = bundle.manifest
    name = options.name or resource_name(manifest.name)
    selector = {"app.kubernetes.io/name": label_value(manifest.name), "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/version": label_value(manifest.version),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "modelbundle",
        LABEL_PREFIX + "bundle-name": label_value(manifest.name),
        LABEL_PREFIX + "bundle-version": label_value(manifest.version),
    }
    annotations = {LABEL_PREFIX + "bundle": manifest.tag, LABEL_PREFIX + "service": manifest.service}

    size = artifact_bytes(bundle) if artifact_size is None else artifact_size
    weights = pod_weights(bundle, options.weights, options.weights_volume, service)
    if options.weights_secret is not None and (weights is None or not weights.fetched) and service is None:
        raise ExportError("--weights-secret is the env of the init container that fetches weights; these pods fetch none")
    if weights is not None:  # not in RECORD, but read and loaded as the copied artifacts are, baked or fetched
        size += weights.total
    memory = options.memory or mebibytes(
        _round_up(_BASE_MEMORY + options.workers * (_WORKER_MEMORY + 2 * size), 64 * MIB)
    )
    requests = {"cpu": options.cpu or DEFAULT_CPU, "memory": memory}
    # no CPU limit unless asked: CFS throttling adds latency; memory limit = request, so eviction is predictable
    limits = {"memory": options.memory_limit or memory}
    if options.cpu_limit:
        limits["cpu"] = options.cpu_limit
    for resource in ("cpu", "memory"):
        if resource in limits and parse_quantity(limits[resource], resource) < parse_quantity(requests[resource], resource):
            raise ExportError(
                f"--{resource}-limit {limits[resource]} is below the request --{resource} {requests[resource]}; "
                "a limit must be at least the request"
            )

    startup = options.startup_timeout or _BASE_STARTUP_SECONDS + math.ceil(size / _LOAD_BYTES_PER_SECOND)
    # the pod gets preStop + drain + exit margin; the kubelet's grace period covers all three
    grace = options.prestop_sleep + math.ceil(options.graceful_timeout) + _EXIT_MARGIN_SECONDS
    cores = parse_quantity(limits.get("cpu", requests["cpu"]), "cpu")
    # os.cpu_count() in a container is the node's: without this, BLAS would start one thread per node core
    blas_threads = max(1, int(cores / Decimal(options.workers)))
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": HOME_DIR},  # where the home emptyDir is mounted, whatever the image says
        {"name": "MODELBUNDLE_HOST", "value": "0.0.0.0"},
        {"name": "MODELBUNDLE_PORT", "value": str(SERVER_PORT)},
        {"name": "MODELBUNDLE_WORKERS", "value": str(options.workers)},
        {"name": "MODELBUNDLE_GRACEFUL_TIMEOUT", "value": _number(options.graceful_timeout)},
        {"name": "MODELBUNDLE_BLAS_THREADS", "value": str(blas_threads)},
    ]
    if options.jobs_volume is None and options.jobs_url_secret is None:
        # the default queue would sit in the pod's emptyDir: lost with the pod, and one per replica
        # (a job submitted to one pod unknown to the next), so no jobs rather than jobs that vanish
        env.append({"name": "MODELBUNDLE_JOBS", "value": "false"})
    if options.jobs_volume is not None:
        env.append({"name": "MODELBUNDLE_JOBS_DIR", "value": JOBS_DIR})
    if options.jobs_url_secret is not None:
        secret, _, key = options.jobs_url_secret.partition(":")
        env.append({"name": "MODELBUNDLE_JOBS_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": key or JOBS_URL_SECRET_KEY}}})
    api_keys_secret = None
    if options.api_keys_secret is not None:
        secret, _, key = options.api_keys_secret.partition(":")
        api_keys_secret = (secret, key or API_KEYS_SECRET_KEY)
        # a file, not an env var: it may hold name:sha256 lines, and a mounted Secret is updated in place
        env.append({"name": "MODELBUNDLE_API_KEY_FILE", "value": f"{API_KEYS_DIR}/{API_KEYS_FILE}"})

    replicas = 1 if options.jobs_volume is not None else options.replicas
    if replicas is not None:
        min_replicas = max_replicas = replicas
    else:
        min_replicas = options.min_replicas or min(DEFAULT_MIN_REPLICAS, options.max_replicas or DEFAULT_MIN_REPLICAS)
        max_replicas = options.max_replicas or max(DEFAULT_MAX_REPLICAS, min_replicas)
        if min_replicas > max_replicas:
            raise ExportError(f"--min-replicas {min_replicas} is above --max-replicas {max_replicas}")
    return Plan(
        name=name,
        namespace=options.namespace,
        image=options.image,
        image_pull_policy="IfNotPresent" if image_pinned(options.image) else "Always",
        labels=labels,
        selector=selector,
        annotations=annotations,
        requests=requests,
        limits=limits,
        env=env,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu=options.target_cpu,
        startup_failure_threshold=math.ceil(startup / STARTUP_PERIOD_SECONDS),
        prestop_sleep=options.prestop_sleep,
        termination_grace_seconds=grace,
        tmp_size=options.tmp_size,
        home_size=options.home_size,
        jobs_volume=options.jobs_volume,
        api_keys_secret=api_keys_secret,
        deployment_mode=options.deployment_mode,
        weights=weights,
        weights_secret=options.weights_secret if weights is not None and weights.fetched else None,
    )


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
