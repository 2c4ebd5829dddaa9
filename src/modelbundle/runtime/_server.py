"""Run a service under uvicorn: one worker in this process, or several behind a supervisor."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ..errors import ServeError
from ._access_log import with_access_log
from ._app import create_app
from ._config import MATH_THREAD_VARIABLES, ServeConfig
from ._log_format import server_formatter
from ._protocol import HANDSHAKE_GRACE_S, accept_backlog, protocol_class, stop_new_connections
from ._source import ServiceSource, resolve_source
from ._state import ServerState
from ._tracing_setup import check_tracing
from ._ws_protocol import PING_INTERVAL_S, PING_TIMEOUT_S, GracefulWebSocketProtocol

logger = logging.getLogger("modelbundle.server")
#: at shutdown, rounds of taking in queued connections before the listener closes regardless
MAX_BACKLOG_ROUNDS = 20


def serve(target: str, config: ServeConfig) -> None:
    """Serve the Service at ``target`` until SIGTERM/SIGINT; raise ServeError if it cannot start."""
    configure_logging(config)
    limit_math_threads(config)
    source = resolve_source(target)  # fail here, in the parent, on a bad target or a corrupt bundle
    check_tracing(os.environ)  # and on OTEL_* settings the workers could not honour
    if config.model_dir is not None:
        artifacts_from(source, config)  # and on model data that does not fit the bundle
    if config.reload:
        from ._reload import serve_with_reload

        serve_with_reload(source, target, config)
        return
    sock = bind_socket(config.host, config.port)
    announce(source, sock, config)
    announce_artifacts(source, config)
    if config.workers == 1:
        with sock:
            run_worker(source, config, sock, ServerState())
        return
    from ._supervisor import Supervisor
    from .jobs import prepare_jobs_for_workers

    # the workers share one SQLite jobs folder: this process holds its lock and re-queues at start
    config, jobs_lock = prepare_jobs_for_workers(config, source.service_cls.name)
    try:
        Supervisor(source.pinned_target, config, sock).run()
    finally:
        if jobs_lock is not None:
            jobs_lock.release()


def run_worker(source: ServiceSource, config: ServeConfig, sock: socket.socket, state: ServerState) -> None:
    """Serve on an already bound socket in this process until told to stop."""
    service_cls = source.service_cls
    app = create_app(service_cls, config, state, artifacts=artifacts_from(source, config), version=source.version)
    asgi_app, access_log = with_access_log(app, config)
    server = _Server(
        uvicorn.Config(
            asgi_app,
            lifespan="on",
            log_level=config.log_level,
            access_log=False,  # ours (_access_log.py) writes it off the event loop
            timeout_graceful_shutdown=math.ceil(config.graceful_timeout),
            log_config=None,
            http=protocol_class(config.max_header_size, config.max_headers),
            ws=GracefulWebSocketProtocol,
            # a message above --max-body-size closes its socket with 1009, as a body above it gets a 413
            ws_max_size=config.max_body_size,
            ws_ping_interval=PING_INTERVAL_S,
            ws_ping_timeout=PING_TIMEOUT_S,
        ),
        on_exit=state.mark_stopping,
        sole_listener=config.workers == 1,
        on_shutdown=lambda: app.sockets.drain(config.graceful_timeout),
    )
    app.on_startup_failure = server.stop  # setup() in the background (SageMaker mode) failed
    # uvicorn re-raises the signal that stopped it once it has shut down; with these
    # handlers in place that re-raise is a no-op and a graceful stop exits 0, not 143
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore_signal)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        # uvicorn calls sys.exit(3) when the lifespan startup (setup()) fails; report it as ours
        if server.started:
            raise
    finally:
        if access_log is not None:
            access_log.close()  # every request answered is in the log before the process exits
        # Python restores the default handlers while it exits, so a second SIGTERM then (the
        # supervisor's, after the process group's) would kill a worker that stopped cleanly
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
    if not server.started or app.startup_error is not None:  # setup() failed (before or after serving began)
        if app.startup_error is not None:
            raise ServeError(f"{service_cls.__name__} did not start: {app.startup_error}")
        raise ServeError(f"{service_cls.__name__} did not start: setup() failed (the error is shown above)")


def artifacts_from(source: ServiceSource, config: ServeConfig) -> Callable[[], dict[str, Any]]:
    """The bundle's artifact loader, or with ``--model-dir`` one for that folder (checked against the bundle now)."""
    if config.model_dir is None:
        return source.load_artifacts
    if source.manifest is None:
        raise ServeError(f"--model-dir replaces a bundle's artifacts; {source.origin} is not a bundle (bundle build it first)")
    from ._model_dir import model_dir_loader

    return model_dir_loader(Path(config.model_dir), source.manifest)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a stop signal arrives so /readyz turns 503 at once,
    and when its shutdown begins so open WebSockets get the graceful timeout (``_ws_protocol.py``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_exit: Callable[[], None],
        *,
        sole_listener: bool,
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._on_shutdown = on_shutdown
        #: this process alone listens on the socket (one worker), so it may stop the socket's queue
        self._sole_listener = sole_listener

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Take in every connection already queued on the listener, then close it as uvicorn does:
        closing a listener resets the connections still in its queue, which their clients
        made before the stop and whose requests are owed an answer."""
        loop = asyncio.get_running_loop()
        self._on_shutdown()  # the graceful timeout of open WebSockets starts now

        def protocol() -> asyncio.Protocol:
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
            )

        if self._sole_listener:  # with several workers the supervisor does it, for all of them
            for sock in sockets or []:
                stop_new_connections(sock)
        await asyncio.sleep(HANDSHAKE_GRACE_S)  # handshakes under way finish and join the queue
        for _ in range(MAX_BACKLOG_ROUNDS):  # more may queue while these are taken in
            pending = accept_backlog(list(sockets or []), protocol, loop)
            if not pending:
                break
            await asyncio.gather(*pending, return_exceptions=True)
        # close at once, with nothing in between: a connection queued after the last accept is reset
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await super().shutdown(sockets)

    def stop(self) -> None:
        """Stop serving from inside the event loop (no signal)."""
        self._on_exit()
        self.should_exit = True


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    pass


def limit_math_threads(config: ServeConfig) -> None:
    """Cap BLAS/OpenMP threads before the service imports numpy: on a small machine, math
    threads of a big batch otherwise fight the event loop for the cores. Workers inherit it."""
    if config.blas_threads is not None:
        for name in MATH_THREAD_VARIABLES:
            os.environ[name] = str(config.blas_threads)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a busy port fails before setup() runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def announce(source: ServiceSource, sock: socket.socket, config: ServeConfig) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        "serving %s (%s) on http://%s:%d with %d worker%s (docs at /docs)",
        source.service_cls.name, source.origin, shown, port, config.workers, "s" if config.workers > 1 else "",
    )


def announce_artifacts(source: ServiceSource, config: ServeConfig) -> None:
    """Where the workers load the artifacts from: a model data folder (SageMaker's /opt/ml/model) or the bundle."""
    if config.model_dir is not None:
        from ._model_dir import read_model_data

        model_dir = Path(config.model_dir).resolve()
        exported = read_model_data(model_dir).bundle
        logger.info(
            "loading artifacts from %s (model data exported from %s, every file checked), not from %s",
            model_dir, exported, source.origin,
        )
    elif source.manifest is not None and source.manifest.artifacts:
        names = ", ".join(artifact.name for artifact in source.manifest.artifacts)
        logger.info("loading artifacts from %s (%s)", source.origin, names)


def configure_logging(config: ServeConfig) -> None:
    level = getattr(logging, config.log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(server_formatter(config.log_format))
    handler.addFilter(_drop_uvicorn_startup_failed)
    for name in ("modelbundle", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level)
        log.propagate = False
    # the service's own loggers, while it sets no handler up (logging.basicConfig still works): this
    # format and request ids rather than the bare message of logging's handler of last resort
    logging.lastResort = handler
    # uvicorn writes its access line only when this logger has a handler: never, ours does it
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


def _drop_uvicorn_startup_failed(record: logging.LogRecord) -> bool:
    """uvicorn's "Application startup failed. Exiting." adds nothing: the runtime then says why, in one line."""
    return not (record.name == "uvicorn.error" and record.msg == "Application startup failed. Exiting.")


