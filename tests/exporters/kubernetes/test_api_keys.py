"""API keys in the Kubernetes export: the key file from a Secret, mounted read-only; probes stay on open routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelbundle.bundler import StoredBundle
from modelbundle.errors import ExportError
from modelbundle.exporters.kubernetes import KubernetesOptions, export_kubernetes
from modelbundle.runtime import ServeConfig

from .conftest import IMAGE, read_manifests


def _export(bundle: StoredBundle, out: Path, **flags: Any) -> dict[str, dict[str, Any]]:
    export_kubernetes(bundle, out, KubernetesOptions.from_flags(image=IMAGE, **flags), validate=True)
    return read_manifests(out)


@pytest.mark.parametrize(("flag", "name", "key"), [("model-keys", "model-keys", "api-keys"), ("keys:team.txt", "keys", "team.txt")])
def test_the_secrets_key_file_is_mounted_and_handed_to_the_server(
    bundle: StoredBundle, tmp_path: Path, flag: str, name: str, key: str
) -> None:
    manifests = _export(bundle, tmp_path / "out", api_keys_secret=flag)  # validated against the Kubernetes schemas
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == name
    [item] = volume["secret"]["items"]
    assert item["key"] == key
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELBUNDLE_API_KEY_FILE"] == f"{mount['mountPath']}/{item['path']}"
    # the server in the pod reads these variables: write the Secret's file where the mount puts it
    key_file = tmp_path / "mounted"
    key_file.write_text("ci:" + "ab" * 32 + "\n")
    config = ServeConfig.resolve({}, {**env, "MODELBUNDLE_API_KEY_FILE": str(key_file)})
    assert config.api_key_file == str(key_file)
    # the kubelet's probes send no key: they must stay on the routes that never ask for one
    from modelbundle.runtime._auth import PROBES

    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in PROBES
    # the file is readable by the image's user through the pod's fsGroup, by no one else
    assert volume["secret"]["defaultMode"] & 0o007 == 0
    assert pod["securityContext"]["fsGroup"] == container["securityContext"]["runAsUser"]


def test_without_the_flag_nothing_is_mounted(bundle: StoredBundle, tmp_path: Path) -> None:
    manifests = _export(bundle, tmp_path / "out")
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "secret" in v]
    assert "MODELBUNDLE_API_KEY_FILE" not in {e["name"] for e in pod["containers"][0]["env"]}


@pytest.mark.parametrize("flag", ["Bad_Name", "keys:a/b", "keys:"])
def test_a_bad_secret_reference_is_one_line(flag: str) -> None:
    with pytest.raises(ExportError, match="--api-keys-secret"):
        KubernetesOptions.from_flags(image=IMAGE, api_keys_secret=flag)


def test_kserve_mounts_the_same_key_file(bundle: StoredBundle, tmp_path: Path) -> None:
    from modelbundle.exporters.kubernetes import export_kserve

    out = tmp_path / "out"
    export_kserve(bundle, out, KubernetesOptions.from_flags(image=IMAGE, api_keys_secret="model-keys"), validate=True)
    [service] = read_manifests(out).values()
    predictor = service["spec"]["predictor"]
    [volume] = [v for v in predictor["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "model-keys"
    [container] = predictor["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert env["MODELBUNDLE_API_KEY_FILE"].startswith(mount["mountPath"] + "/")
