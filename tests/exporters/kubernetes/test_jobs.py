"""The jobs queue in the Kubernetes export: a PersistentVolumeClaim (one replica) or PostgreSQL's URL from a Secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import cli, failed, ok
from modelbundle.bundler import StoredBundle
from modelbundle.errors import ExportError
from modelbundle.exporters.docker._dockerfile import JOBS_DIR as DOCKER_JOBS_DIR
from modelbundle.exporters.kubernetes import (
    KubernetesOptions,
    export_kubernetes,
    kubernetes_versions,
    validate_manifest,
)
from modelbundle.runtime import ServeConfig

from .conftest import IMAGE, Built, read_manifests


def _export(bundle: StoredBundle, out: Path, **flags: Any) -> dict[str, dict[str, Any]]:
    export_kubernetes(bundle, out, KubernetesOptions.from_flags(image=IMAGE, **flags), validate=True)
    return read_manifests(out)


def _pod(manifests: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def test_a_jobs_volume_is_a_claim_mounted_where_the_server_keeps_its_jobs(bundle: StoredBundle, tmp_path: Path) -> None:
    manifests = _export(bundle, tmp_path / "out", jobs_volume="5Gi")
    claim = manifests["jobs-pvc.yaml"]
    for version in kubernetes_versions():
        validate_manifest(claim, version)
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod, container = _pod(manifests)
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MODELBUNDLE_JOBS_DIR"] == mount["mountPath"]
    assert mount["mountPath"] == DOCKER_JOBS_DIR, "the images keep a directory the server user owns there"
    # the volume is written by the image's non-root user: the pod's fsGroup makes it theirs
    assert pod["securityContext"]["fsGroup"] == container["securityContext"]["runAsUser"]
    # one server owns a jobs directory: one replica, and the old pod stops before the new one starts
    deployment = manifests["deployment.yaml"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    assert "hpa.yaml" not in manifests


@pytest.mark.parametrize(("flag", "name", "key"), [("jobs-db", "jobs-db", "url"), ("pg:DATABASE_URL", "pg", "DATABASE_URL")])
def test_a_jobs_url_secret_reaches_every_replica_as_the_jobs_url(
    bundle: StoredBundle, tmp_path: Path, flag: str, name: str, key: str
) -> None:
    manifests = _export(bundle, tmp_path / "out", jobs_url_secret=flag)
    _, container = _pod(manifests)
    [item] = [item for item in container["env"] if item["name"] == "MODELBUNDLE_JOBS_URL"]
    assert item == {"name": "MODELBUNDLE_JOBS_URL", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
    assert "jobs-pvc.yaml" not in manifests and "hpa.yaml" in manifests  # replicas scale as usual


def test_without_a_jobs_flag_the_pods_serve_no_jobs(bundle: StoredBundle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "jobs-pvc.yaml" in _export(bundle, out, jobs_volume="1Gi")
    manifests = _export(bundle, out)  # again into the same directory: the stale claim goes
    assert "jobs-pvc.yaml" not in manifests
    _, container = _pod(manifests)
    env = {item["name"]: item.get("value") for item in container["env"]}
    # a queue in the pod's emptyDir would go with the pod, and differ from replica to replica
    assert not ServeConfig.resolve({}, env).jobs
    assert "MODELBUNDLE_JOBS_DIR" not in env and "MODELBUNDLE_JOBS_URL" not in env


@pytest.mark.parametrize("flags", [{"jobs_volume": "1Gi"}, {"jobs_url_secret": "db"}])
def test_with_a_jobs_flag_the_server_keeps_jobs_on(bundle: StoredBundle, tmp_path: Path, flags: dict[str, Any]) -> None:
    _, container = _pod(_export(bundle, tmp_path / "out", **flags))
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    config = ServeConfig.resolve({}, env)
    assert config.jobs and config.jobs_dir == env.get("MODELBUNDLE_JOBS_DIR")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"jobs_volume": "10GB"}, r"--jobs-volume: '10GB' is not a Kubernetes quantity"),
        ({"jobs_volume": "1Gi", "replicas": 2}, r"--jobs-volume .* one replica; .* --jobs-url-secret"),
        ({"jobs_volume": "1Gi", "max_replicas": 3}, r"--jobs-volume .* one replica"),
        ({"jobs_volume": "1Gi", "jobs_url_secret": "db"}, r"--jobs-volume .* and --jobs-url-secret .* are alternatives"),
        ({"jobs_url_secret": "Jobs_DB"}, r"--jobs-url-secret: 'Jobs_DB' is not a valid Kubernetes name"),
        ({"jobs_url_secret": "db:a/b"}, r"--jobs-url-secret 'db:a/b': the key after ':'"),
    ],
)
def test_bad_jobs_options_are_refused_before_anything_is_written(
    bundle: StoredBundle, tmp_path: Path, flags: dict[str, Any], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=message):
        export_kubernetes(bundle, out, KubernetesOptions.from_flags(image=IMAGE, **flags))
    assert not out.exists()


def test_the_cli_flags(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ok(cli("export", "kubernetes", built.tag, "--image", IMAGE, "-o", out, "--jobs-volume", "2Gi", home=built.home))
    assert "PersistentVolumeClaim" in result.stdout
    refused = cli("export", "kubernetes", built.tag, "--image", IMAGE, "-o", tmp_path / "b",
                  "--jobs-volume", "2Gi", "--replicas", "3", home=built.home)  # fmt: skip
    assert "--jobs-url-secret" in failed(refused)
