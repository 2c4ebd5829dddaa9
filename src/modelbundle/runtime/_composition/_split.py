"""``bundle serve --split``: each service of a composed graph in its own process.

The parent binds every socket first (the entry's on --host/--port, each dependency's on
a free loopback port), so every URL is known before any process starts; each process
serves one service (``--service``) and reaches its dependencies at those URLs over
loopback HTTP. Readiness is shared, as among ``--workers``: /readyz of any process is
200 once every service has set its flag. A process that fails before all are ready
stops the whole server; one that dies later is started again on its socket. At a stop
the entry goes first (its accepted requests may still call the others), then the rest,
callers before their dependencies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from ... import _startup_gc
from ...errors import ModelbundleError, ServeError
from .._config import ServeConfig
from ._urls import url_variable

logger = logging.getLogger("modelbundle.server")
POLL_SECONDS = 0.2
KILL_MARGIN_SECONDS = 5.0
RESTART_DELAY_SECONDS = 0.5


class SplitSupervisor:
    """Runs ``names`` (a graph's services, dependencies first, the entry last), one process each."""

    def __init__(self, target: str, names: list[str], config: ServeConfig, entry_sock: socket.socket) -> None:
        self.target = target
        self.names = names
        self.config = config
        self._ctx = multiprocessing.get_context("spawn")
        self._sockets = [*(_loopback_socket() for _ in names[:-1]), entry_sock]
        self.urls = {name: f"http://127.0.0.1:{sock.getsockname()[1]}" for name, sock in zip(names[:-1], self._sockets, strict=False)}
        self._ready: Any = self._ctx.Array("b", len(names) + 1, lock=False)
        self._processes: list[BaseProcess] = []
        self._stop_signal: int | None = None

    def run(self) -> None:
        for name, url in self.urls.items():
            logger.info("service %s serves on %s", name, url)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self._processes = [self._start(index) for index in range(len(self.names))]
            self._watch()
            codes = self._stop_all()
        finally:
            for sock in self._sockets:
                sock.close()
        failed = {self.names[i]: code for i, code in enumerate(codes) if code != 0}
        if failed:
            raise ServeError(f"service process(es) did not stop cleanly: {failed}")

    def _start(self, index: int) -> BaseProcess:
        env = {url_variable(name): url for name, url in self.urls.items()}
        process = self._ctx.Process(
            target=_service_main,
            args=(self.target, self.names[index], self.config.model_dump(), env, self._sockets[index], self._ready, index),
            name=f"modelbundle-service-{self.names[index]}",
        )
        process.start()
        return process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _watch(self) -> None:
        count = len(self.names)
        while self._stop_signal is None:
            time.sleep(POLL_SECONDS)
            if all(self._ready[:count]):
                self._ready[count] = 1
            for index, process in enumerate(self._processes):
                if process.is_alive() or self._stop_signal is not None:
                    continue
                if not self._ready[count]:  # still starting: fatal
                    self._stop_all()
                    raise ServeError(
                        f"service {self.names[index]!r} exited with status {process.exitcode} before it was ready "
                        "(the error is shown above)"
                    )
                logger.warning("service %s (pid %s) died with status %s; starting it again", self.names[index], process.pid, process.exitcode)
                self._ready[index] = 0
                time.sleep(RESTART_DELAY_SECONDS)
                self._processes[index] = self._start(index)

    def _stop_all(self) -> list[int]:
        codes = [0] * len(self._processes)
        deadline = time.monotonic() + self.config.graceful_timeout + KILL_MARGIN_SECONDS
        for index in reversed(range(len(self._processes))):  # the entry first, each caller before what it calls
            process = self._processes[index]
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                logger.error("service %s (pid %s) did not stop in time; killing it", self.names[index], process.pid)
                process.kill()
                process.join()
            codes[index] = process.exitcode if process.exitcode is not None else -1
        return codes


def _loopback_socket() -> socket.socket:
    from .._server import bind_socket

    return bind_socket("127.0.0.1", 0)


def _service_main(
    target: str, name: str, config_data: dict[str, Any], env: dict[str, str], sock: socket.socket, ready: Any, index: int
) -> None:
    """Entry point of one service's process."""
    _startup_gc.pause()
    os.environ.update(env)  # where its dependencies are (MODELBUNDLE_DEPENDENCY_<NAME>_URL)
    from .._server import configure_logging, run_worker
    from .._source import resolve_source
    from .._state import ServerState
    from ._one_service import one_service_source

    config = ServeConfig(**{**config_data, "split": False, "service": name})
    configure_logging(config)
    try:
        source = one_service_source(resolve_source(target, verify=False), name)
        run_worker(source, config, sock, ServerState(ready, index))
    except ModelbundleError as exc:
        logging.getLogger("modelbundle.server").error("%s: %s", name, exc)
        sys.exit(3)
