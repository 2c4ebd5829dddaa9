"""``--reload``: uvicorn's reloader restarts the server when a file under the service's folder changes.

The socket is bound and the serving line printed here, as without ``--reload``;
uvicorn is told to leave logging alone (``log_config=None``), and the reloaded
process sets up the runtime's own log format before it builds the app, so its
lines (the ready line too) look like those of ``bundle serve`` without the flag.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import uvicorn
from uvicorn.supervisors import ChangeReload

from .. import _startup_gc
from ..service_base import is_file_target, split_target
from ._access_log import with_access_log
from ._app import create_app
from ._config import ServeConfig
from ._source import ServiceSource
from ._types import ASGIApp

_TARGET_ENV = "MODELBUNDLE_RELOAD_TARGET"
_CONFIG_ENV = "MODELBUNDLE_RELOAD_CONFIG"


def serve_with_reload(source: ServiceSource, target: str, config: ServeConfig) -> None:
    from ._server import announce, bind_socket

    watch = Path(split_target(target)[0]).resolve().parent if is_file_target(target) else Path.cwd()
    os.environ[_TARGET_ENV] = target
    os.environ[_CONFIG_ENV] = config.model_dump_json()
    uvicorn_config = uvicorn.Config(
        "modelbundle.runtime._reload:app_from_env",
        factory=True,
        host=config.host,
        port=config.port,
        reload=True,
        reload_dirs=[str(watch)],
        log_level=config.log_level,
        access_log=False,  # the runtime's own access log (_access_log.py), added by app_from_env
        timeout_graceful_shutdown=math.ceil(config.graceful_timeout),
        log_config=None,
    )
    sock = bind_socket(config.host, config.port)
    announce(source, sock, config)
    _startup_gc.resume_after_startup()  # this process only watches files; the reloaded one serves
    with sock:
        ChangeReload(uvicorn_config, target=uvicorn.Server(uvicorn_config).run, sockets=[sock]).run()


def app_from_env() -> ASGIApp:
    """The factory the reloader's child process calls (its access log is written out at exit)."""
    from ._server import configure_logging
    from ._source import resolve_source

    config = ServeConfig.model_validate_json(os.environ[_CONFIG_ENV])
    configure_logging(config)
    source = resolve_source(os.environ[_TARGET_ENV])
    app = create_app(source.service_cls, config, artifacts=source.load_artifacts, version=source.version)
    return with_access_log(app, config)[0]
