"""A composed bundle whose services each reference weights: a service served alone fetches only its own.

Served alone (``--service``, each ``--split`` process, each Kubernetes Deployment) a
service neither fetches nor loads the weights of the others; ``bundle weights fetch
--service`` is its init container's share, and the Kubernetes export sizes each pod's
volume by its own service's weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporters.kubernetes.conftest import IMAGE, read_manifests
from fixtures.bundles import build_in_process
from fixtures.cli import cli, failed, ok
from fixtures.weights import WeightedBundles
from modelbundle.bundler import StoredBundle
from modelbundle.exporters.kubernetes import KubernetesOptions, export_kubernetes
from modelbundle.exporters.kubernetes._quantity import parse_quantity
from modelbundle.runtime import dependency_url_variable

SERVICE = '''\
import hashlib

from modelbundle import Artifact, Service, api, depends


class Encoder(Service):
    weights = Artifact("file", uri={encoder.uri!r}, sha256={encoder.sha256!r}, size={encoder.size})

    @api
    def encode(self, text: str) -> str:
        return hashlib.sha256(self.weights.read_bytes()).hexdigest()


class Front(Service):
    encoder = depends(Encoder)
    weights = Artifact("file", uri={front.uri!r}, sha256={front.sha256!r}, size={front.size})

    @api
    async def run(self, text: str) -> list[str]:
        return [await self.encoder.encode(text), hashlib.sha256(self.weights.read_bytes()).hexdigest()]
'''


@dataclass(frozen=True)
class Weights:
    uri: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Composed:
    bundle: StoredBundle
    encoder: Weights
    front: Weights


def _weights(path: Path, size: int) -> Weights:
    data = os.urandom(size)
    path.write_bytes(data)
    return Weights(path.as_uri(), hashlib.sha256(data).hexdigest(), size)


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Composed:
    project, home = tmp_path_factory.mktemp("composed-weights"), tmp_path_factory.mktemp("composed-weights-home")
    origin = tmp_path_factory.mktemp("composed-weights-origin")
    encoder, front = _weights(origin / "encoder.bin", 1024 * 1024 + 1), _weights(origin / "front.bin", 3 * 1024 * 1024 + 5)
    (project / "pipeline.py").write_text(SERVICE.format(encoder=encoder, front=front))
    return Composed(build_in_process(f"{project}/pipeline.py:Front", project, home), encoder, front)


def _cached(home: Path) -> set[str]:
    return {path.name for path in (home / "blobs" / "sha256").glob("*") if not path.name.endswith((".lock", ".partial"))}


def test_a_service_served_alone_fetches_and_loads_only_its_own_weights(
    composed: Composed, serve_in_subprocess: Callable[..., Any], tmp_path: Path
) -> None:
    home = {"MODELBUNDLE_HOME": str(tmp_path / "home")}
    folder = str(composed.bundle.path)
    with serve_in_subprocess(folder, "--service", "Encoder", env=home) as encoder:
        assert encoder.post("/encode", json={"text": "x"}).text == composed.encoder.sha256
        assert _cached(tmp_path / "home") == {composed.encoder.sha256}
        urls = {**home, dependency_url_variable("Encoder"): encoder.url}
        with serve_in_subprocess(folder, "--service", "Front", env=urls) as front:
            assert front.post("/run", json={"text": "x"}).json() == [composed.encoder.sha256, composed.front.sha256]
    assert _cached(tmp_path / "home") == {composed.encoder.sha256, composed.front.sha256}


def test_weights_fetch_takes_one_service_and_refuses_an_unknown_one(
    composed: Composed, weighted_bundles: WeightedBundles, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    out = ok(cli("weights", "fetch", "--quiet", composed.bundle.path, "--service", "Encoder", home=home)).stdout
    assert f"1 referenced weights of {composed.bundle.tag}, service Encoder" in out
    assert _cached(home) == {composed.encoder.sha256}
    unknown = failed(cli("weights", "fetch", composed.bundle.path, "--service", "Decoder", home=home))
    assert "'Decoder'" in unknown and "its services are Encoder, Front" in unknown
    alone = failed(cli("weights", "fetch", weighted_bundles.first.path, "--service", "Encoder", home=home))
    assert "serves one service, not a graph" in alone


def test_each_deployment_fetches_and_sizes_only_its_own_services_weights(composed: Composed, tmp_path: Path) -> None:
    export_kubernetes(composed.bundle, tmp_path, KubernetesOptions.from_flags(image=IMAGE, weights="fetch"), validate=True)
    manifests = read_manifests(tmp_path)
    pods = {name: manifests[file]["spec"]["template"]["spec"] for name, file in
            (("Front", "deployment.yaml"), ("Encoder", "encoder-deployment.yaml"))}
    limits = {}
    for name, pod in pods.items():
        [init] = pod["initContainers"]
        assert init["command"][-4:] == ["/opt/bundle", "--service", name, "--quiet"]
        [volume] = [v for v in pod["volumes"] if v["name"] == "weights"]
        limits[name] = parse_quantity(volume["emptyDir"]["sizeLimit"], "sizeLimit")
    # each volume holds its own service's weights: their difference is the difference of the sizes, give or take rounding
    assert abs((limits["Front"] - limits["Encoder"]) - (composed.front.size - composed.encoder.size)) < 1024 * 1024
