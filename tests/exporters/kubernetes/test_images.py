"""The manifests against real images of the session: ``--image`` is checked, and the pod's settings run the image.

The images are the exporters' shared ones (``tests/exporters/conftest.py``): the
iris example's docker image, plus its SageMaker image, built on the same venv image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from fixtures.cli import cli, failed, ok
from fixtures.docker import Image, ImageSession, running
from fixtures.session import PREFIX, unique_name
from modelbundle.bundler import LocalStore, StoredBundle, build, resolve_build_options

from .conftest import Built, read_manifests

#: what a model library does on first use: cache a download under ~/.cache
WRITE_CACHE = (
    "import pathlib; path = pathlib.Path.home() / '.cache' / 'library' / 'weights.bin'; "
    "path.parent.mkdir(parents=True, exist_ok=True); path.write_bytes(b'w'); print(path)"
)
PYTHON = "/opt/venv/bin/python"


@pytest.fixture(scope="module")
def iris_sagemaker_image(session: ImageSession, iris_bundle: StoredBundle, iris_image: Image) -> str:
    """The SageMaker image of the same bundle (after iris_image: its venv image is reused)."""
    tag = f"{PREFIX}/iris:{iris_bundle.manifest.version}-sagemaker"
    ok(session.containerize(iris_bundle.tag, "--target", "sagemaker", tag=tag))
    return tag


@pytest.fixture(scope="module")
def iris_next_version(session: ImageSession, iris_project: Path, iris_bundle: StoredBundle) -> StoredBundle:
    """Another version of the iris bundle in the same store (the lock is the session's, so this takes seconds)."""
    options = resolve_build_options({"service": f"{iris_project}/service.py:IrisClassifier", "version": "next", "quiet": True}, iris_project)
    return build(options, LocalStore(session.home))


def _export(home: Path, ref: str, image: str, out: Path) -> Any:
    return cli("export", "kubernetes", ref, "--image", image, "-o", out, "--no-validate", home=home)


def test_the_bundles_own_image_passes_without_a_warning(session: ImageSession, iris_image: Image, tmp_path: Path) -> None:
    result = ok(_export(session.home, iris_image.bundle.tag, iris_image.tag, tmp_path / "out"))
    assert result.stderr == ""
    assert read_manifests(tmp_path / "out")["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"] == iris_image.tag


def test_an_image_of_another_version_is_refused(session: ImageSession, iris_image: Image, iris_next_version: StoredBundle, tmp_path: Path) -> None:
    old = iris_image.bundle.tag
    error = failed(_export(session.home, iris_next_version.tag, iris_image.tag, tmp_path / "out"))
    assert f"--image {iris_image.tag} is an image of {old}, not of {iris_next_version.tag}" in error
    assert f"bundle containerize {iris_next_version.tag}" in error
    assert not (tmp_path / "out").exists()


def test_the_sagemaker_image_is_refused_naming_the_target_to_use(
    session: ImageSession, iris_bundle: StoredBundle, iris_sagemaker_image: str, tmp_path: Path
) -> None:
    labels = session.engine.images.get(iris_sagemaker_image).attrs["Config"]["Labels"]
    assert labels["ai.modelbundle.image.target"] == "sagemaker"
    error = failed(_export(session.home, iris_bundle.tag, iris_sagemaker_image, tmp_path / "out"))
    assert f"is the --target sagemaker image of {iris_bundle.tag}" in error
    assert "listens on 8080" in error and f"--target docker image: `bundle containerize {iris_bundle.tag}`" in error
    assert not (tmp_path / "out").exists()


def test_an_image_of_another_bundle_is_refused(built: Built, iris_image: Image, tmp_path: Path) -> None:
    error = failed(_export(built.home, built.tag, iris_image.tag, tmp_path / "out"))
    assert f"is an image of the bundle {iris_image.bundle.tag}, not of {built.tag}" in error


def test_an_image_the_engine_lacks(session: ImageSession, iris_bundle: StoredBundle, tmp_path: Path) -> None:
    # a bare name would be pulled from Docker Hub's library by a cluster: refused
    bare = f"{unique_name('nosuch')}:1"
    error = failed(_export(session.home, iris_bundle.tag, bare, tmp_path / "bare"))
    assert f"--image {bare}: no such image in the local Docker engine" in error
    assert f"docker.io/library/{bare.partition(':')[0]}" in error
    # with a registry: a warning that the cluster must pull it, and the manifests are written
    remote = f"registry.invalid:5000/models/{unique_name('nosuch')}:1"
    result = ok(_export(session.home, iris_bundle.tag, remote, tmp_path / "remote"))
    assert result.stderr.strip() == (
        f"warning: --image {remote} was not checked (it is not in the local Docker engine): "
        f"the cluster must be able to pull it, and it must be an image of {iris_bundle.tag}"
    )
    assert (tmp_path / "remote" / "deployment.yaml").is_file()


def test_an_image_without_bundle_labels_is_a_warning(session: ImageSession, iris_bundle: StoredBundle, tmp_path: Path) -> None:
    result = ok(_export(session.home, iris_bundle.tag, session.base_image, tmp_path / "out"))
    assert f"--image {session.base_image} has no ai.modelbundle.bundle labels" in result.stderr


def _pod_settings(deployment: dict[str, Any]) -> dict[str, Any]:
    """docker run arguments for what the kubelet does with the manifest's container (its emptyDirs as tmpfs)."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False
    return {
        "user": f"{security['runAsUser']}:{security['runAsGroup']}",
        "read_only": security["readOnlyRootFilesystem"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "environment": {item["name"]: item["value"] for item in container["env"]},
        # an emptyDir is a fresh folder the pod's user may write to (0777, group fsGroup); this engine ignores a
        # tmpfs mode, so the same right is given by owner: the pod's user and its fsGroup
        "tmpfs": {mount["mountPath"]: f"uid={security['runAsUser']},gid={pod['securityContext']['fsGroup']}" for mount in container["volumeMounts"]},
    }


def test_the_pod_settings_run_the_image_and_home_is_writable(session: ImageSession, iris_image: Image, tmp_path: Path) -> None:
    ok(_export(session.home, iris_image.bundle.tag, iris_image.tag, tmp_path / "out"))
    settings = _pod_settings(read_manifests(tmp_path / "out")["deployment.yaml"])
    with running(session.engine, iris_image.tag, **settings) as container:
        container.wait_ready()
        assert container.post("/predict", json={"x": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
        code, output = container.container.exec_run([PYTHON, "-c", WRITE_CACHE])
        assert code == 0, output.decode()
        assert output.decode().strip() == f"{settings['environment']['HOME']}/.cache/library/weights.bin"
        code, output = container.container.exec_run([PYTHON, "-c", "open('/opt/bundle/x', 'w')"])
        assert code != 0 and b"Read-only file system" in output  # the root stays read-only

    # without the home volume, the same settings cannot write ~/.cache (what the manifests did before)
    settings["tmpfs"].pop(settings["environment"]["HOME"])
    with pytest.raises(docker.errors.ContainerError, match="Read-only file system"):
        session.engine.containers.run(
            iris_image.tag, entrypoint=[PYTHON, "-c", WRITE_CACHE], command=[], remove=True, name=unique_name("nohome"), **settings
        )
