"""A real two-node Ray cluster for the Ray tests: one per session, made of ``--target ray`` images.

The image is built once with the real ``bundle containerize --target ray``. A
head and a worker container run it on a private Docker network the session
creates; each node's address is its own address on that network, and only the
head's Serve HTTP port (8000) and dashboard (8265) are published, on 127.0.0.1.
The image, the containers and the network are named under the session's
``PREFIX``, so a second session on the machine runs a cluster of its own.
The host needs no Ray: ``bundle deploy ray`` talks to the dashboard's REST API.
Every phase's time is printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.bundles import build_in_process
from fixtures.cli import cli, ok
from fixtures.docker import docker_client, ensure_base_image
from fixtures.session import KEEP, PREFIX
from fixtures.venvs import REQUIREMENTS
from modelbundle.bundler import StoredBundle

HERE = Path(__file__).resolve().parent
#: logical CPUs per node: room for all three replicas (1 CPU each) on the head once the worker is gone
NODE_CPUS = 4
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    # notice a node that stopped within seconds (the defaults take about half a minute)
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
NODE_OPTIONS = f"--num-cpus {NODE_CPUS} --object-store-memory 200000000 --disable-usage-stats"
HEAD_OPTIONS = "--head --port 6379 --dashboard-host 0.0.0.0 --dashboard-port 8265"
#: a head publishes Serve's HTTP port and the dashboard on loopback only
HEAD_PORTS = {"8000/tcp": ("127.0.0.1", None), "8265/tcp": ("127.0.0.1", None)}
START_TIMEOUT = 180.0
TIMINGS: list[tuple[str, float]] = []


def timed(label: str, started: float) -> float:
    took = time.perf_counter() - started
    TIMINGS.append((label, took))
    return took


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("Ray timings")
        for label, took in TIMINGS:
            terminalreporter.write_line(f"{took:7.1f} s  {label}")


@dataclass
class Node:
    name: str
    container: Any
    ip: str

    def exec(self, *command: str) -> tuple[int, str]:
        code, output = self.container.exec_run(list(command))
        return int(code), output.decode(errors="replace")

    def logs(self) -> str:
        return str(self.container.logs(tail=80).decode(errors="replace"))


@dataclass
class Cluster:
    engine: Any
    network: Any
    home: Path
    image: str
    head: Node
    worker: Node
    proxy_url: str
    dashboard_url: str
    bundles: dict[str, StoredBundle] = field(default_factory=dict)

    def node_by_ip(self, ip: str) -> Node:
        return next(node for node in (self.head, self.worker) if node.ip == ip)

    def applications(self) -> dict[str, Any]:
        with httpx.Client(timeout=30) as client:
            body = client.get(f"{self.dashboard_url}/api/serve/applications/").raise_for_status().json()
        return dict(body.get("applications") or {})

    def replicas(self, app: str = "scaler") -> list[dict[str, Any]]:
        details = self.applications().get(app) or {}
        return [replica for deployment in (details.get("deployments") or {}).values() for replica in deployment.get("replicas", [])]

    def running_replicas(self, app: str = "scaler") -> list[dict[str, Any]]:
        return [replica for replica in self.replicas(app) if replica.get("state") == "RUNNING"]

    def deploy(self, version: str, *args: str) -> str:
        result = ok(cli("deploy", "ray", f"scaler:{version}", "--address", self.dashboard_url, *args, home=self.home, timeout=900))
        return result.stdout


def _node_command(extra: str) -> list[str]:
    # the node's address is its own on the test network, never an address of the host
    return ["-c", f'exec ray start --block --node-ip-address "$(hostname -i)" {NODE_OPTIONS} {extra}']


def start_node(
    engine: Any, image: str, name: str, network: str, extra: str, env: dict[str, str] | None = None, **kwargs: Any
) -> Node:
    container = engine.containers.run(
        image, detach=True, name=name, hostname=name, network=network, entrypoint=["/bin/sh"],
        command=_node_command(extra), environment={**RAY_ENV, **(env or {})}, shm_size="512m", **kwargs,
    )
    container.reload()
    ip = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return Node(name, container, ip)


def published(node: Node, port: int) -> str:
    node.container.reload()
    return f"http://127.0.0.1:{node.container.attrs['NetworkSettings']['Ports'][f'{port}/tcp'][0]['HostPort']}"


def wait_for_nodes(
    cluster_url: str, head: Node, count: int, timeout: float = START_TIMEOUT, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            with httpx.Client(timeout=10, headers=headers) as client:
                body = client.get(f"{cluster_url}/api/v0/nodes").json()
            nodes = body["data"]["result"]["result"]
            last = [(n.get("node_ip"), n.get("state")) for n in nodes]
            if sum(1 for n in nodes if n.get("state") == "ALIVE") >= count:
                return
        if not head.container.attrs or head.container.status == "exited":
            break
        time.sleep(1)
    raise AssertionError(f"the cluster did not have {count} live nodes within {timeout} s ({last}):\n{head.logs()}")


BROKEN_SETUP = """    def setup(self) -> None:
        raise RuntimeError("no weights in this bundle")

"""


def build_scaler(home: Path, root: Path, factor: float, *, broken: bool = False) -> StoredBundle:
    """The scaler service with ``factor``; ``broken``: its setup() raises."""
    root.mkdir(parents=True, exist_ok=True)
    source = (HERE / "scaler" / "service.py").read_text().replace("FACTOR = 2.0", f"FACTOR = {factor}")
    if broken:
        source = source.replace("    @api(", BROKEN_SETUP + "    @api(", 1)
    (root / "service.py").write_text(source)
    return build_in_process(f"{root}/service.py:Scaler", root, home)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    engine = docker_client()
    base_image = ensure_base_image(engine)
    home = tmp_path_factory.mktemp("ray-home")
    work = tmp_path_factory.mktemp("ray-projects")
    started = time.perf_counter()
    bundles = {
        "v1": build_scaler(home, work / "v1", 2.0),
        "v2": build_scaler(home, work / "v2", 3.0),
        "broken": build_scaler(home, work / "broken", 4.0, broken=True),
    }
    timed("build the scaler bundles (v1, v2, one whose setup() raises)", started)
    tag = f"{PREFIX}/scaler:{bundles['v1'].manifest.version}-ray"
    started = time.perf_counter()
    # the Ray the tests run is requirements/ray-target.lock's, hash-checked: a new release changes nothing here
    ok(cli(
        "containerize", bundles["v1"].tag, "--target", "ray", "--target-lock", REQUIREMENTS / "ray-target.lock",
        "--base-image", base_image, "-t", tag, home=home, timeout=1800,
    ))
    timed("bundle containerize --target ray", started)
    network = engine.networks.create(f"{PREFIX}-ray", driver="bridge")
    nodes: list[Node] = []
    try:
        started = time.perf_counter()
        head = start_node(
            engine, tag, f"{PREFIX}-ray-head", network.name,
            HEAD_OPTIONS, ports=HEAD_PORTS,
        )
        nodes.append(head)
        dashboard = published(head, 8265)
        worker = start_node(engine, tag, f"{PREFIX}-ray-worker", network.name, f"--address {head.name}:6379")
        nodes.append(worker)
        wait_for_nodes(dashboard, head, 2)
        timed("start a head and a worker (both alive)", started)
        yield Cluster(engine, network, home, tag, head, worker, published(head, 8000), dashboard, bundles)
    finally:
        if not (KEEP or os.environ.get("MODELBUNDLE_KEEP_RAY")):  # set one to look at a failed cluster afterwards
            for node in nodes:
                with contextlib.suppress(Exception):
                    node.container.remove(force=True)
            with contextlib.suppress(Exception):
                network.remove()
            with contextlib.suppress(Exception):
                engine.images.remove(tag)
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class Outcome:
    started: float
    ended: float
    status: int  # 0: no answer (connection error)
    replica: str
    value: float | None
    error: str = ""


class SteadyLoad:
    """``clients`` threads POSTing to the proxy back to back, each on its own connection, until stopped."""

    def __init__(self, url: str, clients: int = 6, limit_s: float = 300.0) -> None:
        self.url = url
        self.clients = clients
        self.limit_s = limit_s
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        return self.outcomes

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        with httpx.Client(base_url=self.url, timeout=60.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._record(client)

    def _record(self, client: httpx.Client) -> None:
        started = time.monotonic()
        try:
            response = client.post("/predict", json={"x": [[1.0, 2.0]]})
        except httpx.HTTPError as exc:
            outcome = Outcome(started, time.monotonic(), 0, "", None, f"{type(exc).__name__}: {exc}")
        else:
            value = None
            if response.status_code == 200:
                value = float(response.json()[0][0])
            outcome = Outcome(
                started, time.monotonic(), response.status_code, response.headers.get("x-replica", ""), value,
                "" if response.status_code == 200 else response.text[:300],
            )
        with self._lock:
            self.outcomes.append(outcome)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> float:
    """Seconds until ``predicate()`` is true; AssertionError naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout} s")
