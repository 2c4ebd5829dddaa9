"""Several worker processes on one port: start them, watch them, stop them gracefully.

The parent binds the socket and hands it to each worker (spawned fresh, so no
state leaks from the parent). Each worker runs ``setup()`` and sets its flag
in a shared array; /readyz in any worker is 200 only when every flag is set.
A worker that fails before it is ready stops the whole server with an error;
one that dies later is replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from .. import _startup_gc
from ..errors import ModelbundleError, ServeError
from ._config import ServeConfig
from ._metrics import mark_worker_dead
from ._protocol import stop_new_connections

logger = logging.getLogger("modelbundle.server")
POLL_SECONDS = 0.2
# extra time past the graceful timeout before a worker that will not stop is killed
KILL_MARGIN_SECONDS = 5.0
RESTART_BACKOFF_SECONDS = 0.5
MAX_RESTART_BACKOFF_SECONDS = 30.0


class Supervisor:
    def __init__(self, target: str, config: ServeConfig, sock: socket.socket) -> None:
        self.target = target
        self.config = config
        self.sock = sock
        self._ctx = multiprocessing.get_context("spawn")
        # one flag per worker, and a last one meaning "every worker has been ready" (see ServerState)
        self._ready: Any = self._ctx.Array("b", config.workers + 1, lock=False)
        self._failures = [0] * config.workers
        self._workers: list[BaseProcess] = []
        self._stop_signal: int | None = None
        #: pids of workers found dead while serving: they have no say in the exit status
        self._died_while_serving: set[int] = set()

    def run(self) -> None:
        metrics_dir = tempfile.mkdtemp(prefix="modelbundle-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the spawned workers
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self._workers = [self._start(index) for index in range(self.config.workers)]
            self._watch()
            # no new workers from here on: drop our copy of the listening socket, so that once the
            # draining workers close theirs new connections are refused, not queued for no one
            self.sock.close()
            codes = self._stop_all()
        finally:
            self.sock.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        failed = [code for code in codes if code != 0]
        if failed:
            raise ServeError(f"{len(failed)} worker(s) did not stop cleanly (exit codes {failed})")

    def _start(self, index: int) -> BaseProcess:
        process = self._ctx.Process(
            target=_worker_main,
            args=(self.target, self.config.model_dump(), self.sock, self._ready, index),
            name=f"modelbundle-worker-{index}",
        )
        process.start()
        return process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum
        if len(self._workers) == self.config.workers:
            # no new connections from now on (the workers take in those queued), and drop our copy
            # of the listener before any worker closes its own: the last copy to close resets the
            # connections still queued, and only a worker can take those in
            stop_new_connections(self.sock)
            self.sock.close()

    def _watch(self) -> None:
        while self._stop_signal is None:
            time.sleep(POLL_SECONDS)
            if all(self._ready[: len(self._workers)]):
                self._ready[len(self._workers)] = 1
            for index, process in enumerate(self._workers):
                if self._ready[index]:
                    self._failures[index] = 0  # back-off is for crash loops, not for a rare crash
                if process.is_alive() or self._stop_signal is not None:
                    continue
                assert process.pid is not None
                mark_worker_dead(process.pid)
                self._died_while_serving.add(process.pid)
                if not self._ready[len(self._workers)]:  # still starting up: a failure is fatal
                    self._stop_all()
                    raise ServeError(
                        f"worker {index} exited with status {process.exitcode} before it was ready "
                        "(setup() failed; the error is shown above)"
                    )
                self._restart(index, process)

    def _restart(self, index: int, process: BaseProcess) -> None:
        """Replace a dead worker, waiting longer after each failure so a crash loop does not spin."""
        self._failures[index] += 1
        delay = min(RESTART_BACKOFF_SECONDS * 2 ** (self._failures[index] - 1), MAX_RESTART_BACKOFF_SECONDS)
        logger.warning(
            "worker %d (pid %s) died with status %s; starting a new one in %.1f s",
            index, process.pid, process.exitcode, delay,
        )
        self._ready[index] = 0
        deadline = time.monotonic() + delay
        while self._stop_signal is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if self._stop_signal is None:
            self._workers[index] = self._start(index)

    def _stop_all(self) -> list[int]:
        # the parent's copy of the listening socket must go too, or the kernel keeps
        # queueing new connections that no worker will ever accept
        self.sock.close()
        # a worker that died before the stop (and was not replaced yet) has no say in the exit status;
        # one that died since (a signal to the whole group reaches it too) does
        stopping = [process for process in self._workers if process.pid not in self._died_while_serving]
        for process in stopping:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.graceful_timeout + KILL_MARGIN_SECONDS
        codes = []
        for process in stopping:
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                logger.error("worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
            codes.append(process.exitcode if process.exitcode is not None else -1)
        return codes


def _worker_main(target: str, config_data: dict[str, Any], sock: socket.socket, ready: Any, index: int) -> None:
    """Entry point of a spawned worker process."""
    _startup_gc.pause()  # resumed once its service is ready
    from ._server import configure_logging, run_worker
    from ._source import resolve_source
    from ._state import ServerState

    config = ServeConfig(**config_data)
    configure_logging(config)
    try:
        source = resolve_source(target, verify=False)  # the parent verified the bundle
        run_worker(source, config, sock, ServerState(ready, index))
    except ModelbundleError as exc:
        logging.getLogger("modelbundle.server").error("%s", exc)
        sys.exit(3)
