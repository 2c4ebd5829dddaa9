"""--push to a real registry (Debian's docker-registry on 127.0.0.1), then pull by digest and run."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import docker
import httpx
import pytest

from fixtures.cli import ok
from fixtures.docker import Image, ImageSession, running
from modelbundle.bundler import StoredBundle
from stores._registry_fixture import (  # noqa: F401
    PASSWORD,
    USER,
    Registry,
    htpasswd_registry_fixture,
    registry_fixture,
)


def test_push_then_pull_by_digest_and_run(
    session: ImageSession, mlp_bundle: StoredBundle, mlp_image: Image, registry: Registry
) -> None:
    repository = f"{registry.host}/models/mlp"
    tag = f"{repository}:{mlp_bundle.manifest.version}"
    output = ok(session.containerize(mlp_bundle.tag, "--push", tag=tag)).stdout
    match = re.search(rf"pushed {re.escape(repository)}@(sha256:[0-9a-f]{{64}})", output)
    assert match, output
    digest = match.group(1)

    # the registry has the manifest under that digest (the engine pushes Docker v2 manifests)
    manifest = registry_get(registry, f"/v2/models/mlp/manifests/{digest}")
    assert manifest.headers["Docker-Content-Digest"] == digest

    # remove the image itself (every tag of it, the session's mlp image too), then pull it back by digest alone
    image_id = session.engine.images.get(tag).id
    session.engine.images.remove(image_id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        session.engine.images.get(image_id)
    pulled = session.engine.images.pull(f"{repository}@{digest}")
    assert pulled.id == image_id
    assert pulled.attrs["RootFS"]["Layers"] == mlp_image.layers
    pulled.tag(mlp_image.tag)  # the other tests' mlp image, as it was

    with running(session.engine, f"{repository}@{digest}") as container:
        container.wait_ready()
        answer = container.post("/predict", json={"x": [[0.5] * 64]})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()[0]) == 10
    session.engine.images.remove(f"{repository}@{digest}", force=True)


def registry_get(registry: Registry, path: str) -> httpx.Response:
    response = httpx.get(
        f"http://{registry.host}{path}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 200, response.text
    return response


def test_push_takes_credentials_from_the_docker_config(
    session: ImageSession, mlp_bundle: StoredBundle, htpasswd_registry: Registry, tmp_path: Path
) -> None:
    tag = f"{htpasswd_registry.host}/models/mlp:{mlp_bundle.manifest.version}"
    refused = session.containerize(mlp_bundle.tag, "--push", tag=tag, env={"DOCKER_CONFIG": str(tmp_path / "empty")})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"error: pushing {tag} failed:" in refused.stderr and "no basic auth credentials" in refused.stderr

    # what `docker login` writes, in a config of the test's own
    config = tmp_path / "docker-config"
    config.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {htpasswd_registry.host: {"auth": token}}}))
    output = ok(session.containerize(mlp_bundle.tag, "--push", tag=tag, env={"DOCKER_CONFIG": str(config)})).stdout
    assert re.search(r"pushed .*/models/mlp@sha256:[0-9a-f]{64}", output), output
    assert httpx.get(f"http://{htpasswd_registry.host}/v2/models/mlp/tags/list", auth=(USER, PASSWORD)).json()["tags"] == [
        mlp_bundle.manifest.version
    ]
