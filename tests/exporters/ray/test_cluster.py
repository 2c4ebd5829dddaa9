"""``bundle deploy ray`` on a real two-node cluster: spread, a killed replica, a rolling update, a lost node, an OpenAI service.

The tests share one cluster and run in this order; each starts from three
running replicas of a known version. Steady load is six clients posting back to
back through the head's Serve proxy, each answer naming its replica.
"""

from __future__ import annotations

import collections
import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from websockets.sync.client import connect as websockets_connect

from fixtures.bundles import build_in_process
from fixtures.cli import cli, failed, ok
from fixtures.docker import REPO
from fixtures.servers import Scrape

from .conftest import Cluster, Outcome, SteadyLoad, timed, wait_until

REPLICAS = 3
CLIENTS = 6
TINYLM = REPO / "examples" / "tinylm"


def replica_ids(cluster: Cluster) -> set[str]:
    return {replica["replica_id"] for replica in cluster.running_replicas()}


def three_running(cluster: Cluster, version: str) -> bool:
    details = cluster.applications().get("scaler") or {}
    deployed = (details.get("deployed_app_config") or {}).get("args", {}).get("version")
    return details.get("status") == "RUNNING" and deployed == version and len(cluster.running_replicas()) == REPLICAS


@pytest.fixture(scope="module")
def deployed(cluster: Cluster) -> Cluster:
    """scaler v1 with three replicas, deployed by the real CLI (which ships the bundle)."""
    version = cluster.bundles["v1"].manifest.version
    started = time.perf_counter()
    output = cluster.deploy(version, "--replicas", str(REPLICAS))
    took = timed("bundle deploy ray (3 replicas, first deploy)", started)
    assert f"RUNNING, {REPLICAS} replicas (bundle uploaded)" in output, output
    print(f"first deploy: {took:.1f} s")
    return cluster


def ensure_v1(cluster: Cluster) -> None:
    version = cluster.bundles["v1"].manifest.version
    if not three_running(cluster, version):
        cluster.deploy(version, "--replicas", str(REPLICAS))
    wait_until(lambda: three_running(cluster, version), 120, "three running v1 replicas")


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.status != 200]


def test_three_replicas_on_two_nodes_share_the_load_through_the_proxy(deployed: Cluster) -> None:
    cluster = deployed
    replicas = cluster.running_replicas()
    assert len(replicas) == REPLICAS
    nodes = collections.Counter(replica["node_ip"] for replica in replicas)
    assert set(nodes) == {cluster.head.ip, cluster.worker.ip}, nodes  # spread over both nodes

    with httpx.Client(base_url=cluster.proxy_url, timeout=30) as client:
        answer = client.post("/predict", json={"x": [[1.0, 2.0], [3.0, 4.0]]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == [[2.0, 4.0], [6.0, 8.0]]
        assert answer.headers["x-replica"] in {replica["replica_id"] for replica in replicas}
        assert answer.headers["x-replica-node"] in {cluster.head.ip, cluster.worker.ip}
        # the replica's own app answers: our error body, status and request id, through Ray's proxy
        bad = client.post("/predict", json={"x": [[1.0, 2.0, 3.0]]}, headers={"x-request-id": "ray-test-1"})
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["type"] == "invalid_input"
        assert bad.json()["error"]["request_id"] == "ray-test-1" == bad.headers["x-request-id"]
        assert bad.headers.get_list("x-request-id") == ["ray-test-1"]
        assert client.get("/readyz").status_code == 200
        assert client.post("/nope", json={}).status_code == 404

    started = time.perf_counter()
    with SteadyLoad(cluster.proxy_url, CLIENTS) as load:
        wait_until(lambda: load.count() >= 600, 120, "600 answers", interval=0.1)
    outcomes = load.outcomes
    took = timed(f"{len(outcomes)} requests over {REPLICAS} replicas", started)
    assert not failures(outcomes), failures(outcomes)[:5]
    assert {outcome.value for outcome in outcomes} == {2.0}
    spread = collections.Counter(outcome.replica for outcome in outcomes)
    print(f"spread of {len(outcomes)} requests in {took:.1f} s: {dict(spread)}")
    assert set(spread) == {replica["replica_id"] for replica in replicas}, spread
    assert min(spread.values()) >= len(outcomes) / (REPLICAS * 10), spread  # every replica takes a real share

    # each replica's own micro-batcher merged concurrent requests: its /metrics (reached through the proxy) say so
    # concurrent scrapes: one request at a time may keep finding the same idle replicas
    scrapes: dict[str, Scrape] = {}
    with httpx.Client(base_url=cluster.proxy_url, timeout=30) as client, ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(60):
            for response in pool.map(lambda _: client.get("/metrics"), range(CLIENTS)):
                scrapes[response.headers["x-replica"]] = Scrape(response.text)
            if len(scrapes) == REPLICAS:
                break
    assert set(scrapes) == set(spread)
    rows = {replica: scrape.value("modelbundle_batch_size_sum", api="predict") for replica, scrape in scrapes.items()}
    calls = {replica: scrape.value("modelbundle_batch_size_count", api="predict") for replica, scrape in scrapes.items()}
    print(f"rows per model call, by replica: { {r: round(rows[r] / calls[r], 2) for r in rows} }")
    assert sum(rows.values()) >= len(outcomes) and sum(rows.values()) > sum(calls.values())


def test_streams_and_websockets_pass_through_the_proxy_as_they_are_made(deployed: Cluster) -> None:
    cluster = deployed
    factor = 2.0  # scaler v1
    with httpx.Client(base_url=cluster.proxy_url, timeout=30) as client:
        # SSE: each item reaches the client when it is yielded, not when the stream ends
        events: list[tuple[float, str]] = []
        with client.stream("POST", "/count", json={"n": 4, "pause_ms": 300}, headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-replica"]
            events.extend((time.monotonic(), line) for line in response.iter_lines() if line)
        data = [line.removeprefix("data: ") for _, line in events if line.startswith("data: ")]
        assert [float(item) for item in data[:-1]] == [i * factor for i in range(1, 5)], events
        assert "event: end" in [line for _, line in events], events
        first_item, last_line = events[0][0], events[-1][0]
        assert last_line - first_item > 0.6, f"the proxy held the items back: {events}"
        # NDJSON, the default
        ndjson = client.post("/count", json={"n": 3})
        assert ndjson.headers["content-type"].startswith("application/x-ndjson")
        assert [float(line) for line in ndjson.text.splitlines()] == [factor, 2 * factor, 3 * factor]
    # a WebSocket through the proxy: each message answered on the same socket
    with websockets_connect(cluster.proxy_url.replace("http://", "ws://") + "/scale", open_timeout=30) as socket:
        for value in (1.5, -4.0):
            socket.send(json.dumps(value))
            assert float(socket.recv(timeout=30)) == value * factor


def test_a_killed_replica_loses_only_its_own_requests_and_is_replaced(deployed: Cluster) -> None:
    cluster = deployed
    ensure_v1(cluster)
    before = replica_ids(cluster)
    victim = next(replica for replica in cluster.running_replicas() if replica["node_ip"] == cluster.worker.ip)
    node = cluster.node_by_ip(victim["node_ip"])

    with SteadyLoad(cluster.proxy_url, CLIENTS) as load:
        wait_until(lambda: load.count() >= 200, 60, "200 answers before the kill", interval=0.1)
        kill_started = time.monotonic()
        code, output = node.exec("sh", "-c", f"kill -9 {int(victim['pid'])}")
        kill_done = time.monotonic()
        assert code == 0, output
        started = time.perf_counter()
        back = wait_until(
            lambda: len(replica_ids(cluster)) == REPLICAS and victim["replica_id"] not in replica_ids(cluster),
            120, "a third replica again",
        )
        timed("a killed replica replaced (3 running again)", started)
        answered = load.count()
        wait_until(lambda: load.count() >= answered + 200, 60, "200 answers after the replacement", interval=0.1)
        # the proxy learns of the new replica a little after Serve lists it RUNNING: keep the load on until
        # the new replica has answered (the assertion below then holds, or this times out and says so)
        replaced_at = kill_done + back

        def a_new_replica_answered() -> bool:
            new = replica_ids(cluster) - before
            return any(o.started > replaced_at and o.replica in new for o in list(load.outcomes))

        wait_until(a_new_replica_answered, 60, "an answer from the new replica", interval=0.5)
    outcomes = load.outcomes
    failed = failures(outcomes)
    print(f"kill: {len(outcomes)} requests, {len(failed)} failed ({[(f.status, f.error[:60]) for f in failed]}), replaced in {back:.1f} s")
    # only requests in flight when the replica died may fail: each started before the kill ended and ended after it began
    in_flight = [f for f in failed if f.started <= kill_done and f.ended >= kill_started]
    assert failed == in_flight, [(f.started - kill_started, f.ended - kill_started, f.status, f.error) for f in failed]
    assert len(failed) <= CLIENTS
    # three running again (a replica whose health check timed out under this load on 2 cores is
    # briefly not RUNNING: Serve restarts it, which is Ray's business, not a lost request)
    wait_until(lambda: len(replica_ids(cluster)) == REPLICAS, 60, "three running replicas after the load")
    after = replica_ids(cluster)
    assert victim["replica_id"] not in after and after - before
    late = [outcome for outcome in outcomes if outcome.started > replaced_at]
    assert late and not failures(late)
    assert collections.Counter(o.replica for o in late).keys() & (after - before)  # a new replica serves


def test_a_new_version_rolls_out_under_load_without_a_failed_request(deployed: Cluster) -> None:
    cluster = deployed
    ensure_v1(cluster)
    before = replica_ids(cluster)
    v2 = cluster.bundles["v2"].manifest.version
    samples: list[tuple[int, int]] = []  # (old, new) replicas running, sampled during the rollout
    states: list[tuple[str, ...]] = []  # every replica's state, sampled with them
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(httpx.HTTPError):
                listed = cluster.replicas()
                states.append(tuple(sorted(str(replica.get("state")) for replica in listed)))
                if listed:  # while Serve builds the new config, the application may list no deployment at all
                    running = {replica["replica_id"] for replica in listed if replica.get("state") == "RUNNING"}
                    samples.append((len(running & before), len(running - before)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    with SteadyLoad(cluster.proxy_url, CLIENTS) as load:
        wait_until(lambda: load.count() >= 200, 60, "200 answers before the rollout", interval=0.1)
        started = time.perf_counter()
        sampler.start()
        try:
            output = cluster.deploy(v2, "--replicas", str(REPLICAS))
        finally:
            done.set()
            sampler.join()
        took = timed("bundle deploy ray of a new version under load (rolling)", started)
        deployed_at = time.monotonic()
        answered = load.count()
        wait_until(lambda: load.count() >= answered + 300, 60, "300 answers after the rollout", interval=0.1)
    outcomes = load.outcomes
    print(f"rollout: {len(outcomes)} requests, values {collections.Counter(o.value for o in outcomes)}, deploy took {took:.1f} s")
    steps = list(dict.fromkeys(samples))
    print(f"rollout steps (old, new running): {steps}; replica states seen: {list(dict.fromkeys(states))}")
    assert f"RUNNING, {REPLICAS} replicas" in output
    assert not failures(outcomes), [(f.status, f.error) for f in failures(outcomes)][:5]
    # replica by replica: old and new ran side by side, and (with the surge) none was ever missing
    assert any(old and new for old, new in steps), steps
    assert min(old + new for old, new in steps) >= REPLICAS, steps
    values = [outcome.value for outcome in outcomes]
    assert 2.0 in values and 3.0 in values
    late = [outcome for outcome in outcomes if outcome.started > deployed_at + 2]
    assert late and {outcome.value for outcome in late} == {3.0}  # only the new version answers once it is out
    after = replica_ids(cluster)
    assert len(after) == REPLICAS and not (after & before)  # every replica was replaced
    assert {o.replica for o in late} <= after


def test_a_second_application_serves_the_image_bundle_under_a_route_prefix(deployed: Cluster) -> None:
    cluster = deployed
    kept = cluster.applications()["scaler"]["deployed_app_config"]
    v1 = cluster.bundles["v1"].manifest.version  # the bundle inside the image
    started = time.perf_counter()
    output = cluster.deploy(v1, "--from-image", "--name", "scaler-image", "--route-prefix", "/image", "--autoscale", "1,2")
    timed("bundle deploy ray --from-image --autoscale 1,2 (a second application)", started)
    assert "RUNNING, 1 replicas" in output and "uploaded" not in output and "already" not in output
    [deployment] = cluster.applications()["scaler-image"]["deployed_app_config"]["deployments"]
    assert deployment["autoscaling_config"]["min_replicas"] == 1 and deployment["autoscaling_config"]["max_replicas"] == 2
    with httpx.Client(base_url=cluster.proxy_url, timeout=30) as client:
        answer = client.post("/image/predict", json={"x": [[1.0, 2.0]]})
        assert answer.status_code == 200 and answer.json() == [[2.0, 4.0]], answer.text
        assert client.post("/image/predict", json={"x": [[1.0]]}).json()["error"]["type"] == "invalid_input"
        assert client.get("/image/readyz").json() == {"status": "ready"}
        assert client.post("/predict", json={"x": [[1.0, 2.0]]}).status_code == 200  # the first application still answers
    assert cluster.applications()["scaler"]["deployed_app_config"] == kept  # redeployed as it was, untouched


def remove_application(cluster: Cluster, name: str) -> None:
    """Take ``name`` off the cluster, keeping the other applications as deployed."""
    current = cluster.applications()
    apps = [d["deployed_app_config"] for app, d in current.items() if app != name and d.get("deployed_app_config")]
    with httpx.Client(timeout=60) as client:
        client.put(f"{cluster.dashboard_url}/api/serve/applications/", json={"applications": apps}).raise_for_status()
    wait_until(lambda: name not in cluster.applications(), 60, f"application {name} gone")


def test_an_openai_service_serves_v1_through_the_proxy(deployed: Cluster, tmp_path: Path) -> None:
    """The tinylm example shipped to the same cluster (its lock is the scaler's plus nothing Ray lacks) under /tinylm."""
    cluster = deployed
    for name in ("service.py", "train.py", "corpus.txt"):
        shutil.copy(TINYLM / name, tmp_path / name)
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, check=True, capture_output=True)
    bundle = build_in_process(f"{tmp_path}/service.py:TinyLM", tmp_path, cluster.home)
    started = time.perf_counter()
    ok(cli(
        "deploy", "ray", bundle.tag, "--address", cluster.dashboard_url, "--name", "tinylm", "--route-prefix", "/tinylm",
        "--replicas", "1", home=cluster.home, timeout=900,
    ))
    timed("bundle deploy ray tinylm (an OpenAI service beside the scaler)", started)
    try:
        client = openai.OpenAI(base_url=f"{cluster.proxy_url}/tinylm/v1", api_key="unused", max_retries=0, timeout=60)
        assert {model.id for model in client.models.list()} == {"tinylm", "tinylm-embed"}
        body = {"model": "tinylm", "messages": [{"role": "user", "content": "the keeper"}], "max_tokens": 5, "seed": 3}
        whole = client.chat.completions.create(**body)
        assert whole.usage is not None and whole.usage.completion_tokens <= 5
        # streamed through Ray's proxy: the same words as the whole answer (same seed), then the usage chunk
        chunks = list(client.chat.completions.create(**body, stream=True, stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
        vectors = client.embeddings.create(model="tinylm-embed", input=["the lamp", "the lamp"])
        assert len(vectors.data[0].embedding) > 1 and vectors.data[0].embedding == vectors.data[1].embedding
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(**{**body, "model": "nope"})
    finally:
        remove_application(cluster, "tinylm")


@pytest.mark.parametrize(
    ("bundle", "args", "reason"),
    [
        pytest.param("v2", ("--from-image",), "not the scaler:{version}", id="not-the-image-bundle"),
        pytest.param("broken", (), "RuntimeError: no weights in this bundle", id="setup-raises"),
    ],
)
def test_a_replica_that_cannot_start_fails_the_deploy_in_one_line(deployed: Cluster, bundle: str, args: tuple[str, ...], reason: str) -> None:
    cluster = deployed
    version = cluster.bundles[bundle].manifest.version
    started = time.perf_counter()
    result = cli(
        "deploy", "ray", f"scaler:{version}", "--address", cluster.dashboard_url, *args, "--name", "scaler-wrong",
        "--route-prefix", "/wrong", "--timeout", "180", home=cluster.home, timeout=300,
    )
    timed(f"a failed deploy reported ({bundle})", started)
    try:
        line = failed(result)
        print(f"failed deploy: {line}")
        assert "scaler-wrong is DEPLOY_FAILED" in line, line
        assert reason.format(version=version) in line, line
    finally:
        remove_application(cluster, "scaler-wrong")
    with httpx.Client(base_url=cluster.proxy_url, timeout=30) as client:  # the other applications never noticed
        assert client.post("/predict", json={"x": [[1.0, 2.0]]}).status_code == 200


def test_stopping_the_worker_moves_its_replicas_to_the_head(deployed: Cluster) -> None:
    cluster = deployed
    version = cluster.bundles["v2"].manifest.version
    if not three_running(cluster, version):
        ensure_v1(cluster)
        version = cluster.bundles["v1"].manifest.version
    on_worker = [replica for replica in cluster.running_replicas() if replica["node_ip"] == cluster.worker.ip]
    assert on_worker, "no replica on the worker to move"

    def all_on_head() -> bool:
        replicas = cluster.running_replicas()
        return len(replicas) == REPLICAS and all(replica["node_ip"] == cluster.head.ip for replica in replicas)

    with SteadyLoad(cluster.proxy_url, CLIENTS) as load:
        wait_until(lambda: load.count() >= 200, 60, "200 answers before the stop", interval=0.1)
        started = time.perf_counter()
        cluster.worker.container.stop(timeout=5)
        stopped = timed("docker stop of the worker", started)
        moved = wait_until(all_on_head, 120, "three replicas on the head")
        timed("the worker's replicas running on the head", started)
        answered = load.count()
        wait_until(lambda: load.count() >= answered + 200, 60, "200 answers after the move", interval=0.1)
    outcomes = load.outcomes
    failed = failures(outcomes)
    print(f"worker stop: stopped in {stopped:.1f} s, moved {moved:.1f} s later; {len(outcomes)} requests, {len(failed)} failed")
    assert len(failed) <= len(on_worker) * CLIENTS, [(f.status, f.error) for f in failed][:5]
    late = outcomes[-100:]
    assert not failures(late)
    assert all_on_head()
