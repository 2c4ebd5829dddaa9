"""Referenced weights on Kubernetes: baked into the image, or fetched by an init container before the server starts.

A bundle whose weights are references (``Artifact("file", uri=...)``) runs in an
image that either holds them (``bundle containerize --weights baked``) or not
(``--weights fetch``). The export follows the image: ``--weights`` when given,
else the image's ``ai.modelbundle.image.weights`` label when the local engine
has it, else containerize's own default (baked up to its size threshold).

Fetched, the pod gets a volume at the image's weights cache
(``/var/lib/modelbundle/blobs``): an emptyDir sized to the weights, or with
``--weights-volume SIZE`` a PersistentVolumeClaim that keeps them across pods.
An init container (the same image) runs ``bundle weights fetch /opt/bundle``
into it; the server then finds every blob cached and verified. Init containers
run before any probe, so a long fetch never fails the startup probe; the probe's
budget covers reading the weights (see ``_options.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...bundler import StoredBundle
from ...errors import ExportError
from ..docker import WeightsMode

WEIGHTS_VOLUME = "weights"
INIT_CONTAINER = "fetch-weights"
#: room in the emptyDir beyond the blobs: a directory reference's links and the per-blob lock files
_EMPTYDIR_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class PodWeights:
    """What the pods do with the bundle's referenced weights."""

    mode: WeightsMode
    #: bytes of every distinct blob the pods' service references
    total: int
    #: the PersistentVolumeClaim's size (--weights-volume); None: an emptyDir
    volume: str | None = None
    #: the service of a composed bundle whose weights these pods load; None: the whole bundle's
    service: str | None = None

    @property
    def fetched(self) -> bool:
        return self.mode == "fetch"


def pod_weights(bundle: StoredBundle, requested: str | None, volume: str | None, service: str | None = None) -> PodWeights | None:
    """The weights plan for pods that serve ``service`` of a composed bundle (None: all of it); None when they
    load no referenced weights. Baked or fetched is the image's choice, made on all of the bundle's weights."""
    from ...weights import distinct_blobs, references
    from ..docker import plan_weights

    planned = plan_weights(bundle, requested)
    if planned.mode is None:
        if volume is not None:
            raise ExportError(f"--weights-volume: {bundle.tag} references no weights (Artifact(uri=...)), so there is nothing to keep")
        return None
    if volume is not None and planned.mode == "baked":
        raise ExportError("--weights-volume holds weights fetched at start; with --weights baked the image holds them: drop one")
    total = planned.total
    if service is not None:
        manifest = bundle.manifest
        own = distinct_blobs(ref for ref in references(manifest) if manifest.artifact_owner(ref.artifact) == service)
        if not own:
            return None
        total = sum(blob.size for blob in own)
    return PodWeights(planned.mode, total, volume if planned.mode == "fetch" else None, service)


def image_weights_mode(image: str) -> str | None:
    """The ``--weights`` the local image was built with (its label), or None when unknown."""
    from ..docker import IMAGE_WEIGHTS_LABEL, connect, local_image_labels

    try:
        client = connect()
    except ExportError:
        return None  # no engine: the default applies, and the image check says it could not look
    try:
        labels = local_image_labels(client, image)
    finally:
        client.close()
    return (labels or {}).get(IMAGE_WEIGHTS_LABEL)


def weights_claim_name(name: str) -> str:
    return f"{name}-weights"


def emptydir_size(total: int) -> str:
    """The emptyDir's size limit: the blobs and a margin, in whole MiB."""
    return f"{-(-(total + _EMPTYDIR_MARGIN) // (1024 * 1024))}Mi"


def weights_volume(weights: PodWeights, name: str) -> dict[str, Any]:
    if weights.volume is not None:
        return {"name": WEIGHTS_VOLUME, "persistentVolumeClaim": {"claimName": weights_claim_name(name)}}
    return {"name": WEIGHTS_VOLUME, "emptyDir": {"sizeLimit": emptydir_size(weights.total)}}


def weights_mount() -> dict[str, Any]:
    from ..docker import WEIGHTS_CACHE

    return {"name": WEIGHTS_VOLUME, "mountPath": WEIGHTS_CACHE}


def fetch_container(server: dict[str, Any], weights: PodWeights, secret: str | None) -> dict[str, Any]:
    """The init container: the server's image and user, running ``bundle weights fetch`` (of the pods'
    service alone, for a composed bundle) into the volume.

    It mounts the server's /tmp and $HOME (the S3 and registry clients read their config under $HOME);
    ``secret`` (--weights-secret): a Secret whose keys become its env, e.g. AWS_ACCESS_KEY_ID.
    """
    from ..docker import BUNDLE_DIR, VENV_DIR

    home = next((entry.get("value") for entry in server["env"] if entry["name"] == "HOME"), None)
    spec: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": server["image"],
        "imagePullPolicy": server["imagePullPolicy"],
        "command": [
            f"{VENV_DIR}/bin/bundle", "weights", "fetch", BUNDLE_DIR,
            *(["--service", weights.service] if weights.service is not None else []), "--quiet",
        ],
        "env": [entry for entry in server["env"] if entry["name"] == "HOME"],
    }
    if secret is not None:
        spec["envFrom"] = [{"secretRef": {"name": secret}}]
    spec["securityContext"] = dict(server["securityContext"])
    spec["volumeMounts"] = [
        *(mount for mount in server["volumeMounts"] if mount["mountPath"] in ("/tmp", home)),
        weights_mount(),
    ]
    return spec


def weights_volume_claim(weights: PodWeights, metadata: dict[str, Any], replicas: int | None) -> dict[str, Any]:
    """``--weights-volume``: one replica may own it (ReadWriteOnce); several share it (ReadWriteMany)."""
    assert weights.volume is not None
    access = "ReadWriteOnce" if replicas == 1 else "ReadWriteMany"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": {"accessModes": [access], "resources": {"requests": {"storage": weights.volume}}},
    }
