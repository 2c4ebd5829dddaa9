"""A composed bundle (examples/pipeline) on Kubernetes: a Deployment and Service per service that find each other.

The manifests are checked offline (schemas, and that each dependency URL names
the Service that selects the pods serving that dependency), then run: one
container per Deployment on a Docker network the test makes, each reachable by
its Service's name, with the env the YAML gives it, only the entry published.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate.utils as kv
import pytest

from fixtures.docker import HEALTHY_TIMEOUT, Container, Image, ImageSession, running
from fixtures.session import unique_name
from modelbundle.bundler import StoredBundle
from modelbundle.errors import ExportError
from modelbundle.exporters.kubernetes import (
    KubernetesOptions,
    export_kubernetes,
    kubernetes_versions,
)
from modelbundle.exporters.kubernetes._composed import resource_names
from modelbundle.runtime import ServeConfig

from .conftest import read_manifests

IMAGE = "registry.example.com/models/pipeline:1"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 2.4, 3.3, 1.0]]


@dataclass(frozen=True)
class Pods:
    """One Deployment of the export and the Service whose selector picks its pods."""

    deployment: dict[str, Any]
    service: dict[str, Any]

    @property
    def container(self) -> dict[str, Any]:
        [container] = self.deployment["spec"]["template"]["spec"]["containers"]
        return dict(container)

    @property
    def env(self) -> dict[str, str]:
        return {item["name"]: item["value"] for item in self.container["env"] if "value" in item}

    @property
    def host(self) -> str:
        return str(self.service["metadata"]["name"])

    @property
    def port(self) -> int:
        return int(self.service["spec"]["ports"][0]["port"])


def _pods(manifests: dict[str, dict[str, Any]]) -> dict[str, Pods]:
    """Served service name (the pods' MODELBUNDLE_SERVICE) -> its pods."""
    services = [m for m in manifests.values() if m["kind"] == "Service"]
    found = {}
    for deployment in (m for m in manifests.values() if m["kind"] == "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        [service] = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
        pods = Pods(deployment, service)
        found[pods.env["MODELBUNDLE_SERVICE"]] = pods
    return found


def _dependency_urls(pods: Pods) -> dict[str, str]:
    return {name: value for name, value in pods.env.items() if name.startswith("MODELBUNDLE_DEPENDENCY_")}


def _export(bundle: StoredBundle, out: Path, image: str = IMAGE, **flags: Any) -> dict[str, dict[str, Any]]:
    export_kubernetes(bundle, out, KubernetesOptions.from_flags(image=image, **flags), validate=True)
    return read_manifests(out)


def test_each_service_gets_its_pods_and_each_caller_the_urls_of_its_dependencies(
    pipeline_bundle: StoredBundle, tmp_path: Path
) -> None:
    graph = pipeline_bundle.manifest.services
    manifests = _export(pipeline_bundle, tmp_path / "out")
    for version in kubernetes_versions():
        for manifest in manifests.values():
            assert kv.validate(manifest, version, strict=True) == version
    pods = _pods(manifests)
    assert sorted(pods) == sorted(info.name for info in graph)
    entry = graph[-1]
    assert pods[entry.name].deployment is manifests["deployment.yaml"]  # the entry keeps a one-service export's files
    assert len({p.host for p in pods.values()}) == len(graph)
    for info in graph:
        caller = pods[info.name]
        assert ServeConfig.resolve({}, caller.env).service == info.name  # what the server serves
        urls = _dependency_urls(caller)
        assert len(urls) == len(set(info.dependencies.values()))
        for dependency in info.dependencies.values():
            callee = pods[dependency]
            url = urlsplit(next(u for u in urls.values() if urlsplit(u).hostname == callee.host))
            # the Service's port leads to the port the callee's server listens on
            [port] = [p for p in callee.container["ports"] if p["name"] == callee.service["spec"]["ports"][0]["targetPort"]]
            assert url.port == callee.port and port["containerPort"] == ServeConfig.resolve({}, callee.env).port
    hpas = {m["spec"]["scaleTargetRef"]["name"] for m in manifests.values() if m["kind"] == "HorizontalPodAutoscaler"}
    assert hpas == {p.deployment["metadata"]["name"] for p in pods.values()}
    # the entry's readiness is its /readyz, which a service served alone answers 503 until its dependencies are ready
    assert pods[entry.name].container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    # another name and entry-only features, exported over the first: every file replaced, none left behind
    again = _export(pipeline_bundle, tmp_path / "out", name="shop", api_keys_secret="keys", replicas=2)
    assert sorted(again) == sorted(manifests.keys() - {name for name in manifests if name.endswith("hpa.yaml")})
    pods = _pods(again)
    assert all(p.host.startswith("shop") for p in pods.values())
    for info in graph:
        mounted = {m["name"] for m in pods[info.name].container["volumeMounts"]}
        assert ("api-keys" in mounted) == (info is entry)  # the dependencies' Services are internal
        assert pods[info.name].deployment["spec"]["replicas"] == 2


def test_two_services_with_one_kubernetes_name_are_refused(pipeline_bundle: StoredBundle) -> None:
    manifest = pipeline_bundle.manifest
    first, second, entry = manifest.services
    clashing = manifest.model_copy(
        update={"services": [first.model_copy(update={"name": "Text_Model"}), second.model_copy(update={"name": "text.model"}), entry]}
    )
    with pytest.raises(ExportError, match=r"services 'Text_Model' and 'text.model' both give the Kubernetes name 'pipeline-text-model'"):
        resource_names(clashing, "pipeline")


@contextlib.contextmanager
def _network(session: ImageSession) -> Iterator[str]:
    name = unique_name("net")
    network = session.engine.networks.create(name)
    try:
        yield name
    finally:
        network.remove()


def _start(session: ImageSession, image: str, pods: Pods, network: str, publish: bool) -> Any:
    """A container as the Deployment runs it: the image's entrypoint, the YAML's env, reachable by the Service's name."""
    # on the Docker network a name reaches the container itself: the Service's port must be the one it listens on
    assert pods.port == ServeConfig.resolve({}, pods.env).port or publish
    endpoint = session.engine.api.create_endpoint_config(aliases=[pods.host])
    kwargs: dict[str, Any] = {"environment": pods.env, "network": network, "networking_config": {network: endpoint}}
    if publish:
        return Container(session.engine, image, name=unique_name(pods.host), **kwargs)
    return session.engine.containers.run(image, detach=True, name=unique_name(pods.host), **kwargs)


def _wait_for(predicate: Any, what: str, logs: Any) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {HEALTHY_TIMEOUT} s:\n{logs()}"
        time.sleep(0.3)


def test_the_exported_services_reach_each_other_by_their_service_names(
    session: ImageSession, pipeline_image: Image, tmp_path: Path
) -> None:
    graph = pipeline_image.bundle.manifest.services
    labels = session.engine.images.get(pipeline_image.tag).labels
    assert labels["ai.modelbundle.bundle.services"].split(",") == [info.name for info in graph]
    pods = _pods(_export(pipeline_image.bundle, tmp_path / "out", image=pipeline_image.tag))
    entry = graph[-1].name
    bodies = [{"measurements": row} for row in ROWS]

    # the image's default: the whole graph in one process, the answers to match
    with running(session.engine, pipeline_image.tag) as whole:
        whole.wait_ready()
        expected = [whole.post("/classify", json=body).json() for body in bodies]
    # `--service NAME` on the command line reaches the server too: an unknown name is one line naming the services
    refused = session.engine.containers.run(pipeline_image.tag, ["--service", "nope"], name=unique_name("service"), detach=True)
    try:
        assert refused.wait(timeout=HEALTHY_TIMEOUT)["StatusCode"] != 0
        assert f"has no service of that name; it has {', '.join(info.name for info in graph)}" in refused.logs().decode()
    finally:
        refused.remove(force=True)

    with _network(session) as network:
        started: list[Any] = []
        try:
            front = _start(session, pipeline_image.tag, pods[entry], network, publish=True)
            started.append(front.container)

            def readyz() -> httpx.Response | None:
                with contextlib.suppress(httpx.TransportError):
                    return front.get("/readyz")
                return None

            # up before its dependencies: not ready, and it says which it waits for
            _wait_for(lambda: (r := readyz()) is not None and r.status_code == 503 and "dependencies" in r.json(), "waiting", front.logs)
            assert sorted(readyz().json()["dependencies"]) == sorted(n for n in pods if n != entry)  # type: ignore[union-attr]
            started += [_start(session, pipeline_image.tag, pods[name], network, publish=False) for name in pods if name != entry]
            _wait_for(lambda: (r := readyz()) is not None and r.status_code == 200, "ready", front.logs)
            answers = [front.post("/classify", json=body) for body in bodies]
            assert [a.json() for a in answers] == expected
            # the request id of the entry's request reached the dependencies' logs (JSON lines in a container)
            request_id = answers[0].headers["x-request-id"]
            dependency_logs = "".join(c.logs().decode() for c in started[1:])
            assert request_id in dependency_logs
        finally:
            for container in started:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
