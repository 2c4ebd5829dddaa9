"""Real servers on 127.0.0.1 for the runtime tests.

``serve_in_thread`` runs uvicorn in a thread of the test process (fast; the
test can look at the live service instance); ``serve_in_subprocess`` runs
``bundle serve`` in a child process (real signals, real workers). Both hand
back a ``RunningServer`` with a base URL and small helpers for HTTP and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from modelbundle.runtime import ServeConfig, ServiceApp, create_app
from modelbundle.service_base import Service

SERVICES_DIR = Path(__file__).parent / "fixtures" / "services"
#: generous: a spawned worker imports numpy and FastAPI on a busy 2-core machine
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
_ANNOUNCED = re.compile(r"serving .* on http://127\.0\.0\.1:(\d+)")


class RunningServer:
    """A server listening on ``url``, with helpers to talk to it."""

    url: str

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, **kwargs)

    def async_client(self, connections: int = 100) -> httpx.AsyncClient:
        """A client for concurrent requests: one connection each, none kept alive."""
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
        return httpx.AsyncClient(base_url=self.url, timeout=60.0, limits=limits)

    def post_concurrently(self, path: str, bodies: Sequence[Any], **kwargs: Any) -> list[httpx.Response]:
        """POST each JSON body at once, each on its own connection; the responses in order."""

        async def run() -> list[httpx.Response]:
            async with self.async_client(len(bodies)) as client:
                return list(await asyncio.gather(*(client.post(path, json=body, **kwargs) for body in bodies)))

        return asyncio.run(run())

    def scrape(self, client: httpx.Client | None = None) -> Scrape:
        """One read of /metrics (on ``client``'s connection if given)."""
        return Scrape((client.get("/metrics") if client is not None else self.get("/metrics")).text)


class Scrape:
    """The parsed text of one /metrics response."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())


# -- uvicorn in a thread -----------------------------------------------------------------
class ThreadServer(RunningServer):
    """uvicorn serving ``create_app(service_cls, config)`` from a thread of this process."""

    def __init__(self, service_cls: type[Service], config: ServeConfig) -> None:
        self.app: ServiceApp = create_app(service_cls, config)
        # bound here, on port 0, so the port is free and known before the server starts
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(2048)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        # uvicorn only installs signal handlers on the main thread (Server.capture_signals
        # is a no-op elsewhere), so the test process keeps its own SIGINT handling
        self._server = uvicorn.Server(uvicorn.Config(self.app, lifespan="on", log_level="warning", log_config=None))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def service(self) -> Any:
        assert self.app.service is not None, "the service has not been set up"
        return self.app.service

    def post_while_held(
        self, api: str, hold: Any, bodies: Sequence[Any], headers: Sequence[dict[str, str]] | None = None
    ) -> tuple[httpx.Response, list[httpx.Response]]:
        """POST ``hold``, on which the service blocks until its ``gate`` event is set; meanwhile
        POST ``bodies`` at once, and open the gate only when each is queued or answered.

        For the gated fixture services: batches form deterministically, with no sleeps.
        """
        gate, held = self.service.gate, self.service.held
        headers = headers or [{} for _ in bodies]

        async def run() -> tuple[httpx.Response, list[httpx.Response]]:
            async with self.async_client(len(bodies) + 1) as client:
                first = asyncio.create_task(client.post(f"/{api}", json=hold))
                others: list[asyncio.Task[httpx.Response]] = []
                try:
                    assert await asyncio.to_thread(held.wait, 30), "the held call never started"
                    answered_before = await asyncio.to_thread(_answered, self, api)
                    others = [
                        asyncio.create_task(client.post(f"/{api}", json=body, headers=h))
                        for body, h in zip(bodies, headers, strict=True)
                    ]
                    deadline = time.monotonic() + 30
                    while True:
                        scrape = await asyncio.to_thread(self.scrape)
                        queued = scrape.value("modelbundle_queue_depth", api=api)
                        answered = scrape.value("modelbundle_requests_total", api=api) - answered_before
                        if queued + answered >= len(bodies):
                            break
                        assert time.monotonic() < deadline, f"only {queued + answered} of {len(bodies)} arrived"
                        await asyncio.sleep(0.01)
                finally:
                    gate.set()
                return await first, list(await asyncio.gather(*others))

        return asyncio.run(run())

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server for {self.app.service_cls.__name__} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
            assert not self._thread.is_alive(), "the server thread did not stop"
        self._sock.close()  # uvicorn closed it if it started; not if setup failed


def _answered(server: RunningServer, api: str) -> float:
    return server.scrape().value("modelbundle_requests_total", api=api)


@contextlib.contextmanager
def _serve_in_thread(service_cls: type[Service], config: ServeConfig | None = None) -> Iterator[ThreadServer]:
    server = ThreadServer(service_cls, config or ServeConfig(log_level="warning"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def serve_in_thread() -> Callable[..., contextlib.AbstractContextManager[ThreadServer]]:
    """``with serve_in_thread(ServiceCls, ServeConfig(...)) as server:`` for module-scoped fixtures."""
    return _serve_in_thread


# -- `bundle serve` in a subprocess --------------------------------------------------------
class ProcessServer(RunningServer):
    """``python -m modelbundle serve TARGET --port 0 ...`` with its stderr collected."""

    def __init__(self, target: str, args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        port = [] if "--port" in args else ["--port", "0"]
        command = [sys.executable, "-m", "modelbundle", "serve", target, *port, "--no-access-log", *args]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            # its own process group, so close() can reach the workers it spawns, and only them
            start_new_session=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.url = ""

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._lines)

    def wait_for_port(self, timeout: float = START_TIMEOUT) -> str:
        """The URL the server announced (it binds before setup() runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _ANNOUNCED.search(self.stderr)
            if match:
                self.url = f"http://127.0.0.1:{match.group(1)}"
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the server announced no port (exit status {self.proc.poll()}):\n{self.stderr}")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        self.wait_for_port(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with status {self.proc.returncode}:\n{self.stderr}")
            with contextlib.suppress(httpx.TransportError):
                # connections wait in the listen backlog during setup(): keep each try short
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the server was not ready within {timeout} s:\n{self.stderr}")

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit; its status."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit within {timeout} s:\n{self.stderr}") from None
        self._reader.join(10)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def close(self) -> None:
        if self.proc.poll() is None:  # a test failed midway: kill the server and its workers
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@contextlib.contextmanager
def _serve_in_subprocess(
    target: str, *args: str, env: dict[str, str] | None = None, ready: bool = True
) -> Iterator[ProcessServer]:
    """Serve ``target`` (a file under tests/fixtures/services, e.g. ``echo.py:Echo``, or any target)."""
    if ".py:" in target and "/" not in target:
        target = f"{SERVICES_DIR / target.partition(':')[0]}:{target.partition(':')[2]}"
    server = ProcessServer(target, args, env)
    try:
        if ready:
            server.wait_ready()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def serve_in_subprocess() -> Callable[..., contextlib.AbstractContextManager[ProcessServer]]:
    """``with serve_in_subprocess("echo.py:Echo", "--workers", "2") as server:``."""
    return _serve_in_subprocess
