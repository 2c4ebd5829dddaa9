"""Kubernetes manifests for a bundle's image: a Deployment and its Service, autoscaler and disruption
budget (``bundle export kubernetes``), or a KServe InferenceService (``bundle export kserve``)."""

from __future__ import annotations

from ._export import (
    KSERVE_FILES,
    KUBERNETES_FILES,
    ExportedManifests,
    export_kserve,
    export_kubernetes,
)
from ._options import KubernetesOptions, Plan, plan
from ._validate import (
    KUBERNETES_VERSION,
    kubernetes_versions,
    validate_manifest,
    validation_available,
)

__all__ = [
    "KSERVE_FILES",
    "KUBERNETES_FILES",
    "KUBERNETES_VERSION",
    "ExportedManifests",
    "KubernetesOptions",
    "Plan",
    "export_kserve",
    "export_kubernetes",
    "kubernetes_versions",
    "plan",
    "validate_manifest",
    "validation_available",
]
