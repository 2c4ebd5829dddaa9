"""Real servers on 127.0.0.1 for the runtime tests.

``serve_in_thread`` runs uvicorn in a thread of the test process (fast; the
test can look at the live service instance); ``serve_in_subprocess`` runs
``bundle serve`` in a child process (real signals, real workers). Both hand
back a ``RunningServer`` with a base URL and small helpers for HTTP and metrics.

Every session also runs in a directory of its own, removed at the end with the
Docker objects it made (fixtures/session.py).
"""

from __future__ import annotations

# first of all: points $TMPDIR, $MODELBUNDLE_HOME and $MODELBUNDLE_CACHE_DIR at this session's own directory
import fixtures.session  # isort: split

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fixtures.mlflow_models import mlflow_column_model, mlflow_tensor_model  # noqa: F401  (session fixtures: models saved by mlflow)
from fixtures.postgres import postgres  # noqa: F401  (a session fixture: this session's PostgreSQL cluster)
from fixtures.servers import START_TIMEOUT, STOP_TIMEOUT, ProcessServer, RunningServer
from fixtures.weights import weighted_bundles  # noqa: F401  (a session fixture: bundles that reference their weights)
from modelbundle.runtime import ServeConfig, ServiceApp, create_app
from modelbundle.service_base import Service

SERVICES_DIR = Path(__file__).parent / "fixtures" / "services"
#: what the end of the session removed, for the terminal summary
_FINISHED: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "readme: runs the README's commands as a user pastes them (a fresh clone; about two minutes)"
    )


# -- the session's own directory and Docker objects -------------------------------------
@pytest.hookimpl(trylast=True)  # after pytest's own sessionfinish has torn down the session's fixtures
def pytest_sessionfinish() -> None:
    _FINISHED.append(fixtures.session.finish())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _FINISHED:
        terminalreporter.write_line(line)


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
@contextlib.contextmanager
def _serve_in_subprocess(
    target: str, *args: str, env: dict[str, str] | None = None, ready: bool = True
) -> Iterator[ProcessServer]:
    """Serve ``target`` (a file under tests/fixtures/services, e.g. ``echo.py:Echo``, or any target)."""
    if ".py:" in target and "/" not in target:
        target = f"{SERVICES_DIR / target.partition(':')[0]}:{target.partition(':')[2]}"
    elif target.endswith(".py") and "/" not in target:
        target = str(SERVICES_DIR / target)
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
