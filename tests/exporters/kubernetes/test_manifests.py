"""The manifests themselves: strict schema validity, and the cross-references a cluster would trip over."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kv
import pytest

from modelbundle.bundler import StoredBundle
from modelbundle.errors import ExportError
from modelbundle.exporters.kubernetes import (
    KUBERNETES_VERSION,
    KubernetesOptions,
    export_kserve,
    export_kubernetes,
    kubernetes_versions,
    validate_manifest,
)
from modelbundle.exporters.kubernetes._options import DEFAULT_GRACEFUL_TIMEOUT, SERVER_PORT
from modelbundle.runtime import ServeConfig

from .conftest import ARTIFACT_SIZE, IMAGE, read_manifests

DNS_1035 = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"


def _export(bundle: StoredBundle, out: Path, kind: str = "kubernetes", **flags: Any) -> dict[str, dict[str, Any]]:
    export = export_kserve if kind == "kserve" else export_kubernetes
    export(bundle, out, KubernetesOptions.from_flags(image=IMAGE, **flags), validate=True)
    return read_manifests(out)


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["kind"] == "InferenceService":
        [container] = manifest["spec"]["predictor"]["containers"]
    else:
        [container] = manifest["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_versions_checked_include_the_oldest_supported_one() -> None:
    versions = kubernetes_versions()
    assert versions[0] == KUBERNETES_VERSION == "1.29"
    assert versions[-1] == kv.major_minor(kv.latest_version())


@pytest.mark.parametrize("flags", [{}, {"replicas": 3}, {"workers": 2, "cpu": "2", "cpu_limit": "4", "memory": "2Gi"}])
def test_every_document_validates_strictly_against_each_version(bundle: StoredBundle, tmp_path: Path, flags: dict[str, Any]) -> None:
    manifests = _export(bundle, tmp_path / "out", **flags)
    assert {m["kind"] for m in manifests.values()} >= {"Deployment", "Service", "PodDisruptionBudget"}
    for version in kubernetes_versions():
        for manifest in manifests.values():
            # kubernetes-validate itself, on what was read back from the YAML files
            assert kv.validate(manifest, version, strict=True) == version


@pytest.mark.parametrize("mode", ["RawDeployment", "Serverless"])
def test_the_inference_service_validates_against_the_crd_schema(bundle: StoredBundle, tmp_path: Path, mode: str) -> None:
    [isvc] = _export(bundle, tmp_path / "out", "kserve", deployment_mode=mode).values()
    for version in kubernetes_versions():
        validate_manifest(isvc, version)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    container = _container(isvc)
    assert container["name"] == "kserve-container"
    assert _env(container)["PROTOCOL"] == "v2"  # how a custom predictor declares the Open Inference Protocol
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert ("startupProbe" in container) == ("lifecycle" in container) == (mode == "RawDeployment")


def test_the_schema_checks_are_strict(bundle: StoredBundle, tmp_path: Path) -> None:
    manifests = _export(bundle, tmp_path / "out")
    deployment = copy.deepcopy(manifests["deployment.yaml"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(ExportError, match=r"Deployment/mb-3d-model-v2 .*containers\.0\.livenessProbe.*httpGett"):
        validate_manifest(deployment)
    wrong_type = copy.deepcopy(manifests["pdb.yaml"])
    wrong_type["spec"]["selector"] = "app=x"
    with pytest.raises(ExportError, match=r"spec\.selector"):
        validate_manifest(wrong_type)

    [isvc] = _export(bundle, tmp_path / "kserve", "kserve").values()
    # the CRD has protocolVersion only on model-format predictors, not on a custom one
    isvc["spec"]["predictor"]["protocolVersion"] = "v2"
    with pytest.raises(ExportError, match=r"InferenceService/.*protocolVersion"):
        validate_manifest(isvc)
    del isvc["spec"]["predictor"]["protocolVersion"]
    isvc["spec"]["predictor"]["containers"][0]["resources"]["limits"]["memory"] = ["1Gi"]
    with pytest.raises(ExportError, match=r"containers\.0\.resources\.limits\.memory"):
        validate_manifest(isvc)


def test_the_manifest_matches_what_the_server_does(bundle: StoredBundle, tmp_path: Path) -> None:
    manifests = _export(bundle, tmp_path / "out")
    deployment = manifests["deployment.yaml"]
    container, pod = _container(deployment), deployment["spec"]["template"]["spec"]
    assert (ServeConfig().port, ServeConfig().graceful_timeout) == (SERVER_PORT, DEFAULT_GRACEFUL_TIMEOUT)
    env = _env(container)
    assert ServeConfig.resolve({}, env).port == container["ports"][0]["containerPort"] == SERVER_PORT
    assert ServeConfig.resolve({}, env).host == "0.0.0.0"
    for probe, path in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/readyz")]:
        assert container[probe]["httpGet"] == {"path": path, "port": SERVER_PORT}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(SERVER_PORT) and annotations["prometheus.io/path"] == "/metrics"
    # non-root, read-only root, /tmp and $HOME writable
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] == 10001 and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts.keys() == {"/tmp", env["HOME"]}
    assert sorted(v["name"] for v in pod["volumes"] if "emptyDir" in v) == sorted(mounts.values())


@pytest.mark.parametrize("drain", [0, 30, 90.5])
def test_the_grace_period_covers_the_pause_and_the_drain(bundle: StoredBundle, tmp_path: Path, drain: float) -> None:
    deployment = _export(bundle, tmp_path / "out", graceful_timeout=drain)["deployment.yaml"]
    pod, container = deployment["spec"]["template"]["spec"], _container(deployment)
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert ServeConfig.resolve({}, _env(container)).graceful_timeout == drain
    assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_selectors_and_references_agree(bundle: StoredBundle, tmp_path: Path) -> None:
    m = _export(bundle, tmp_path / "out")
    deployment, service, hpa, pdb = m["deployment.yaml"], m["service.yaml"], m["hpa.yaml"], m["pdb.yaml"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
    # a selector is immutable: it must not hold the version, or the next bundle version could not be applied
    assert not any("version" in key for key in selector)
    assert pod_labels["app.kubernetes.io/version"] == bundle.manifest.version
    assert pod_labels["modelbundle.dev/bundle-version"] == bundle.manifest.version
    assert deployment["metadata"]["annotations"]["modelbundle.dev/bundle"] == bundle.tag
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert service["spec"]["ports"][0]["targetPort"] == _container(deployment)["ports"][0]["name"]
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    names = {doc["metadata"]["name"] for doc in m.values()}
    assert len(names) == 1
    assert __import__("re").fullmatch(DNS_1035, names.pop())


def test_a_fixed_replica_count_has_no_autoscaler(bundle: StoredBundle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "hpa.yaml" in _export(bundle, out)
    manifests = _export(bundle, out, replicas=3)  # re-export into the same directory: the stale HPA goes
    assert sorted(manifests) == ["deployment.yaml", "pdb.yaml", "service.yaml"]
    assert manifests["deployment.yaml"]["spec"]["replicas"] == 3


def test_the_startup_budget_grows_with_the_artifacts(bundle: StoredBundle, tmp_path: Path) -> None:
    probe = _container(_export(bundle, tmp_path / "a")["deployment.yaml"])["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= 60 + ARTIFACT_SIZE / (20 * 1024 * 1024)
    assert budget < 60 + ARTIFACT_SIZE / (20 * 1024 * 1024) + probe["periodSeconds"] + 1
    probe = _container(_export(bundle, tmp_path / "b", startup_timeout=600)["deployment.yaml"])["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] == 600


def test_resources_from_options_and_defaults(bundle: StoredBundle, tmp_path: Path) -> None:
    container = _container(_export(bundle, tmp_path / "a")["deployment.yaml"])
    assert container["resources"]["requests"]["cpu"] == "1"
    assert container["resources"]["limits"] == {"memory": container["resources"]["requests"]["memory"]}
    assert _env(container)["MODELBUNDLE_BLAS_THREADS"] == "1"

    flags = {"cpu": "1500m", "cpu_limit": "4", "memory": "3Gi", "memory_limit": "4Gi", "workers": 2}
    container = _container(_export(bundle, tmp_path / "b", **flags)["deployment.yaml"])
    assert container["resources"] == {"requests": {"cpu": "1500m", "memory": "3Gi"}, "limits": {"memory": "4Gi", "cpu": "4"}}
    env = _env(container)
    assert (env["MODELBUNDLE_WORKERS"], env["MODELBUNDLE_BLAS_THREADS"]) == ("2", "2")  # the limit's 4 cores over 2 workers

    # twice the artifacts per worker go into the default memory request
    small = _container(_export(bundle, tmp_path / "c", workers=1)["deployment.yaml"])["resources"]["requests"]["memory"]
    big = _container(_export(bundle, tmp_path / "d", workers=3)["deployment.yaml"])["resources"]["requests"]["memory"]
    per_worker = 256 + math.ceil(2 * ARTIFACT_SIZE / 2**20)
    assert int(big.removesuffix("Mi")) - int(small.removesuffix("Mi")) > 2 * per_worker - 64  # rounded to 64Mi


def test_same_input_gives_the_same_bytes(bundle: StoredBundle, tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    for kind in ("kubernetes", "kserve"):
        _export(bundle, tmp_path / f"{kind}-a", kind, namespace="ml")
        first = files(tmp_path / f"{kind}-a")
        _export(bundle, tmp_path / f"{kind}-b", kind, namespace="ml")
        _export(bundle, tmp_path / f"{kind}-a", kind, namespace="ml")  # again, over the earlier export
        assert files(tmp_path / f"{kind}-b") == files(tmp_path / f"{kind}-a") == first
        assert all(b"namespace: ml\n" in data for data in first.values())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"image": "Registry.Example.com/Models/Iris:1"}, r"--image: .* not a valid image reference \(repository names are lowercase\)"),
        ({"image": "iris latest"}, r"--image: .*has spaces"),
        ({"image": "registry:5000/"}, r"--image: .*not a valid image reference"),
        ({"image": ""}, r"--image: .*empty"),
        ({"memory": "1GB"}, r"--memory: '1GB' is not a Kubernetes quantity \(drop the B"),
        ({"cpu": "two"}, r"--cpu: 'two' is not a Kubernetes quantity"),
        ({"cpu": "-1"}, r"--cpu: '-1' is not a Kubernetes quantity"),
        ({"tmp_size": "1 Gi"}, r"--tmp-size: .*no spaces"),
        ({"cpu": "2", "cpu_limit": "500m"}, r"--cpu-limit 500m is below the request --cpu 2"),
        ({"memory": "2Gi", "memory_limit": "1Gi"}, r"--memory-limit 1Gi is below the request"),
        ({"min_replicas": 4, "max_replicas": 2}, r"--min-replicas 4 is above --max-replicas 2"),
        ({"replicas": 2, "max_replicas": 4}, r"--replicas .* cannot be combined"),
        ({"replicas": 0}, r"--replicas: Input should be greater than or equal to 1"),
        ({"name": "My-Model"}, r"--name: 'My-Model' is not a valid Kubernetes name"),
        ({"namespace": "a_b"}, r"--namespace: 'a_b' is not a valid Kubernetes name"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    bundle: StoredBundle, tmp_path: Path, flags: dict[str, Any], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=message):
        export_kubernetes(bundle, out, KubernetesOptions.from_flags(**{"image": IMAGE, **flags}))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_output_directory_with_other_files_is_refused(bundle: StoredBundle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "kustomization.yaml").write_text("mine\n")
    (out / "deployment.yaml").write_text("mine too\n")
    with pytest.raises(ExportError, match=r"holds files this export did not write \(kustomization\.yaml\)"):
        export_kubernetes(bundle, out, KubernetesOptions(image=IMAGE))
    assert sorted(p.name for p in out.iterdir()) == ["deployment.yaml", "kustomization.yaml"]
    assert (out / "deployment.yaml").read_text() == "mine too\n"

    # a kubernetes export is "other files" to a kserve export, and the other way round
    _export(bundle, tmp_path / "k8s")
    with pytest.raises(ExportError, match=r"did not write \(deployment\.yaml, hpa\.yaml, pdb\.yaml, service\.yaml\)"):
        export_kserve(bundle, tmp_path / "k8s", KubernetesOptions(image=IMAGE))

    a_file = tmp_path / "file.yaml"
    a_file.write_text("x")
    with pytest.raises(ExportError, match=r"exists and is not a directory"):
        export_kubernetes(bundle, a_file, KubernetesOptions(image=IMAGE))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.yaml", "k8s", "out"]  # no staging left behind
