"""``bundle export kubernetes|kserve`` as a user runs it, and the real server probed where the manifest points."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx

from fixtures.cli import cli, failed, ok
from fixtures.servers import ProcessServer, Scrape
from modelbundle.exporters.kubernetes import kubernetes_versions

from .conftest import IMAGE, Built, read_manifests


def test_export_kubernetes_prints_what_it_wrote(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    stdout = ok(cli("export", "kubernetes", built.tag, "--image", IMAGE, "-o", out, "--namespace", "ml", home=built.home)).stdout
    assert stdout.splitlines() == [
        f"{out}/deployment.yaml: Deployment mb-3d-model-v2",
        f"{out}/service.yaml: Service mb-3d-model-v2",
        f"{out}/hpa.yaml: HorizontalPodAutoscaler mb-3d-model-v2",
        f"{out}/pdb.yaml: PodDisruptionBudget mb-3d-model-v2",
        f"valid against Kubernetes {', '.join(kubernetes_versions())} (strict)",
    ]
    assert all(doc["metadata"]["namespace"] == "ml" for doc in read_manifests(out).values())
    # NAME alone means the latest version
    stdout = ok(cli("export", "kserve", built.tag.partition(":")[0], "--image", IMAGE, "-o", tmp_path / "isvc", "--no-validate", home=built.home)).stdout
    assert stdout.splitlines() == [f"{tmp_path / 'isvc'}/inferenceservice.yaml: InferenceService mb-3d-model-v2"]


def test_export_errors_are_one_line(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "--image: 'Iris' is not a valid image reference" in failed(
        cli("export", "kubernetes", built.tag, "--image", "Iris", "-o", out, home=built.home)
    )
    assert "--memory: '2GB' is not a Kubernetes quantity" in failed(
        cli("export", "kserve", built.tag, "--image", IMAGE, "--memory", "2GB", "-o", out, home=built.home)
    )
    assert "no bundle nope" in failed(cli("export", "kubernetes", "nope", "--image", IMAGE, "-o", out, home=built.home))
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert "holds files this export did not write (notes.txt)" in failed(
        cli("export", "kubernetes", built.tag, "--image", IMAGE, "-o", out, home=built.home)
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def _free(port: int) -> bool:
    with socket.socket() as sock, contextlib.suppress(OSError):
        sock.bind(("127.0.0.1", port))
        return True
    return False


def test_the_real_server_answers_where_the_manifest_probes(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    ok(cli("export", "kubernetes", built.tag, "--image", IMAGE, "-o", out, "--workers", "2", "--graceful-timeout", "10", home=built.home))
    deployment = read_manifests(out)["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    port = container["ports"][0]["containerPort"]
    assert int(env["MODELBUNDLE_PORT"]) == port
    # the pod's environment, but on loopback; the manifest's port when this machine has it free (the
    # test helper always passes --port; test_manifests checks that the env alone resolves to this port)
    env["MODELBUNDLE_HOST"] = "127.0.0.1"
    on_port = _free(port)
    server = ProcessServer(built.tag, ("--port", str(port) if on_port else "0"), env={**env, "MODELBUNDLE_HOME": str(built.home)})
    try:
        url = server.wait_for_port(90)
        assert url.endswith(f":{port}") or not on_port
        startup = container["startupProbe"]
        deadline = time.monotonic() + startup["failureThreshold"] * startup["periodSeconds"]
        while True:  # what the kubelet does: GET with the probe's timeout until 200 or the budget is spent
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(url + startup["httpGet"]["path"], timeout=startup["timeoutSeconds"])
                if response.status_code == 200:
                    break
            assert time.monotonic() < deadline, f"not started within the startup probe's budget:\n{server.stderr}"
            time.sleep(0.2)
        for probe in ("livenessProbe", "readinessProbe"):
            spec = container[probe]
            response = httpx.get(url + spec["httpGet"]["path"], timeout=spec["timeoutSeconds"])
            assert response.status_code == 200, (probe, response.text)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
        metrics = httpx.get(url + annotations["prometheus.io/path"], timeout=10)
        assert metrics.status_code == 200 and Scrape(metrics.text).samples
        assert httpx.post(url + "/add", json=[1, 2], timeout=10).json() == [8, 9]  # the artifact loaded

        # SIGTERM (after the preStop pause): the drain ends well inside the grace period, with status 0
        started = time.monotonic()
        assert server.stop() == 0, server.stderr
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        assert time.monotonic() - started < pod["terminationGracePeriodSeconds"] - pause
    finally:
        server.close()
