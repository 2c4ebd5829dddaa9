"""Referenced weights on Kubernetes: an init container fetches them into a volume, and the budgets follow their size.

The bundle references 40 GiB of weights that exist nowhere: an export reads only
the sizes and digests in ``bundle.json``, so nothing is fetched, and the numbers
are big enough that a budget ignoring them would be far off.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from fixtures.bundles import build_in_process
from modelbundle.bundler import StoredBundle
from modelbundle.errors import ExportError
from modelbundle.exporters.kubernetes import KubernetesOptions, export_kserve, export_kubernetes
from modelbundle.exporters.kubernetes._quantity import parse_quantity

from .conftest import IMAGE, read_manifests

GIB = 1024**3
WEIGHTS_SIZE = 40 * GIB
#: what the docker image says: its MODELBUNDLE_HOME's blobs/ is the cache
IMAGE_CACHE = "/var/lib/modelbundle/blobs"

SERVICE = '''\
from modelbundle import Artifact, Service, api


class Big(Service):
    weights = Artifact("file", uri="s3://models/big.safetensors", sha256={sha256!r}, size={size})

    @api
    def size(self, x: int) -> int:
        return self.weights.stat().st_size
'''


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    project, home = tmp_path_factory.mktemp("big-weights"), tmp_path_factory.mktemp("big-weights-home")
    (project / "big.py").write_text(SERVICE.format(sha256=hashlib.sha256(b"big").hexdigest(), size=WEIGHTS_SIZE))
    return build_in_process(f"{project}/big.py:Big", project, home)


def _export(bundle: StoredBundle, out: Path, kind: str = "kubernetes", **flags: Any) -> dict[str, dict[str, Any]]:
    export = export_kserve if kind == "kserve" else export_kubernetes
    export(bundle, out, KubernetesOptions.from_flags(image=IMAGE, **flags), validate=True)
    return read_manifests(out)


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["predictor"] if manifest["kind"] == "InferenceService" else manifest["spec"]["template"]["spec"]


def _budget(container: dict[str, Any]) -> int:
    probe = container["startupProbe"]
    return int(probe["failureThreshold"] * probe["periodSeconds"])


def test_fetched_weights_come_from_an_init_container_into_a_volume_the_server_mounts(big: StoredBundle, tmp_path: Path) -> None:
    # no --weights: 40 GiB is above containerize's threshold, so the image fetches, and so do the pods
    manifests = _export(big, tmp_path / "out", weights_secret="model-origin")
    pod = _pod(manifests["deployment.yaml"])
    [server] = pod["containers"]
    [init] = pod["initContainers"]
    assert init["image"] == server["image"] == IMAGE
    assert init["command"][-4:-1] == ["weights", "fetch", "/opt/bundle"]
    assert init["securityContext"] == server["securityContext"]  # the server's user owns what it fetched
    assert init["envFrom"] == [{"secretRef": {"name": "model-origin"}}]
    [volume] = [v for v in pod["volumes"] if "emptyDir" in v and v["name"] not in ("tmp", "home")]
    # the volume holds the weights: its limit is at least their size, and not wildly more
    limit = parse_quantity(volume["emptyDir"]["sizeLimit"], "sizeLimit")
    assert WEIGHTS_SIZE <= limit < WEIGHTS_SIZE + GIB
    for container in (init, server):
        assert {"name": volume["name"], "mountPath": IMAGE_CACHE} in container["volumeMounts"]
    # the server reads 40 GiB before /readyz: the startup budget and the memory grow with it
    assert _budget(server) >= WEIGHTS_SIZE / (20 * 1024 * 1024)
    assert parse_quantity(server["resources"]["requests"]["memory"], "memory") >= 2 * WEIGHTS_SIZE
    assert "weights-pvc.yaml" not in manifests


def test_baked_weights_need_no_fetch_but_still_count_in_the_startup_budget(big: StoredBundle, tmp_path: Path) -> None:
    baked = _pod(_export(big, tmp_path / "baked", weights="baked")["deployment.yaml"])
    fetched = _pod(_export(big, tmp_path / "fetched", weights="fetch")["deployment.yaml"])
    assert "initContainers" not in baked
    assert not any(m["mountPath"] == IMAGE_CACHE for m in baked["containers"][0]["volumeMounts"])
    assert _budget(baked["containers"][0]) == _budget(fetched["containers"][0]) >= WEIGHTS_SIZE / (20 * 1024 * 1024)


def test_a_weights_volume_is_a_claim_shared_by_the_replicas(big: StoredBundle, tmp_path: Path) -> None:
    manifests = _export(big, tmp_path / "a", weights="fetch", weights_volume="50Gi")
    claim = manifests["weights-pvc.yaml"]
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # autoscaled: pods on several nodes read it
    pod = _pod(manifests["deployment.yaml"])
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]]
    assert {"name": volume["name"], "mountPath": IMAGE_CACHE} in pod["initContainers"][0]["volumeMounts"]
    one = _export(big, tmp_path / "b", weights="fetch", weights_volume="50Gi", replicas=1)["weights-pvc.yaml"]
    assert one["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_kserve_fetches_weights_the_same_way(big: StoredBundle, tmp_path: Path) -> None:
    predictor = _pod(_export(big, tmp_path / "out", "kserve", weights="fetch")["inferenceservice.yaml"])
    [init] = predictor["initContainers"]
    [server] = predictor["containers"]
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == IMAGE_CACHE)
    assert mount in init["volumeMounts"]


def test_a_bundle_without_weights_is_unchanged(bundle: StoredBundle, tmp_path: Path) -> None:
    pod = _pod(_export(bundle, tmp_path / "out")["deployment.yaml"])
    assert "initContainers" not in pod
    with pytest.raises(ExportError, match="references no weights"):
        _export(bundle, tmp_path / "vol", weights_volume="1Gi")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"weights": "baked", "weights_volume": "1Gi"}, "--weights-volume"),
        ({"weights": "baked", "weights_secret": "origin"}, "--weights-secret"),
        ({"weights": "fetch", "weights_volume": "lots"}, "--weights-volume"),
    ],
)
def test_contradictory_weights_options_are_refused(big: StoredBundle, tmp_path: Path, flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportError, match=message):
        _export(big, tmp_path / "out", **flags)
    assert not (tmp_path / "out").exists()
