"""A KServe ``InferenceService`` (serving.kserve.io/v1beta1) with the bundle's image as a custom predictor.

A custom predictor declares its protocol with the container variable
``PROTOCOL=v2`` (the CRD's ``protocolVersion`` exists only on model-format
predictors). In ``RawDeployment`` mode KServe makes a Deployment, Service and
HPA from this spec, so it carries the same probes, security context and
drain timing as ``bundle export kubernetes``. Knative (``Serverless``) has its
own drain (queue-proxy) and owns the port name, so the preStop pause and the
startup probe are left out there.
"""

from __future__ import annotations

from typing import Any

from ._manifests import Manifest, container, init_containers, metadata, pod_settings
from ._options import METRICS_PATH, SERVER_PORT, Plan

#: the container name KServe expects for a predictor's main container
KSERVE_CONTAINER = "kserve-container"
KSERVE_API_VERSION = "serving.kserve.io/v1beta1"


def inference_service(plan: Plan) -> Manifest:
    raw = plan.deployment_mode == "RawDeployment"
    annotations = {
        "serving.kserve.io/deploymentMode": plan.deployment_mode,
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "prometheus.kserve.io/port": str(SERVER_PORT),
        "prometheus.kserve.io/path": METRICS_PATH,
    }
    predictor: dict[str, Any] = {
        "minReplicas": plan.min_replicas,
        "maxReplicas": plan.max_replicas,
    }
    if raw:  # KServe makes an autoscaling/v2 HPA from these; Knative scales on concurrency instead
        predictor.update({"scaleMetric": "cpu", "scaleTarget": plan.target_cpu})
    predictor.update(pod_settings(plan))
    predictor["containers"] = [
        server := container(
            plan,
            name=KSERVE_CONTAINER,
            port_name="http1",  # Knative's name for an HTTP/1.1 port; KServe passes it through in raw mode
            startup_probe=raw,
            prestop=raw,
            extra_env=[{"name": "PROTOCOL", "value": "v2"}],
        )
    ]
    predictor.update(init_containers(plan, server))
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": metadata(plan, annotations=annotations),
        "spec": {"predictor": predictor},
    }


def kserve_manifests(plan: Plan) -> dict[str, Manifest]:
    """File name -> object, for ``bundle export kserve``."""
    return {"inferenceservice.yaml": inference_service(plan)}
