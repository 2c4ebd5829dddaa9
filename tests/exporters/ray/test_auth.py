"""A cluster started with ``RAY_AUTH_MODE=token``: ``bundle deploy ray`` needs its token, and says so in one line without it."""

from __future__ import annotations

import contextlib
import secrets
import time

import httpx

from fixtures.cli import cli, failed, ok

from .conftest import (
    HEAD_OPTIONS,
    HEAD_PORTS,
    Cluster,
    published,
    start_node,
    timed,
    wait_for_nodes,
)


def test_a_token_cluster_takes_the_deploy_only_with_its_token(cluster: Cluster) -> None:
    token = secrets.token_hex(32)
    started = time.perf_counter()
    head = start_node(
        cluster.engine, cluster.image, f"{cluster.head.name}-auth", cluster.network.name, HEAD_OPTIONS,
        env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, ports=HEAD_PORTS,
    )
    try:
        dashboard = published(head, 8265)
        wait_for_nodes(dashboard, head, 1, headers={"Authorization": f"Bearer {token}"})
        timed("start a one-node cluster with RAY_AUTH_MODE=token", started)
        assert httpx.get(f"{dashboard}/api/serve/applications/", timeout=30).status_code in (401, 403)

        version = cluster.bundles["v1"].manifest.version
        line = failed(cli("deploy", "ray", f"scaler:{version}", "--address", dashboard, home=cluster.home, env={"RAY_AUTH_TOKEN": ""}))
        assert "answered 401" in line or "answered 403" in line, line
        assert "--auth-token or RAY_AUTH_TOKEN" in line

        started = time.perf_counter()
        output = ok(cli(
            "deploy", "ray", f"scaler:{version}", "--address", dashboard, "--num-cpus", "0.5",
            home=cluster.home, env={"RAY_AUTH_TOKEN": token}, timeout=600,
        )).stdout
        timed("bundle deploy ray with a token (1 replica)", started)
        assert "RUNNING, 1 replicas (bundle uploaded)" in output, output
        answer = httpx.post(f"{published(head, 8000)}/predict", json={"x": [[1.0, 2.0]]}, timeout=30)
        assert answer.status_code == 200 and answer.json() == [[2.0, 4.0]], answer.text
    finally:
        with contextlib.suppress(Exception):
            head.container.remove(force=True)
