"""``--reload``: uvicorn's reloader restarts the server when a file under the service's folder changes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import uvicorn

from ..service_base import is_file_target, split_target
from ._app import ServiceApp, create_app
from ._config import ServeConfig

_TARGET_ENV = "MODELBUNDLE_RELOAD_TARGET"
_CONFIG_ENV = "MODELBUNDLE_RELOAD_CONFIG"


def serve_with_reload(target: str, config: ServeConfig) -> None:
    watch = Path(split_target(target)[0]).resolve().parent if is_file_target(target) else Path.cwd()
    os.environ[_TARGET_ENV] = target
    os.environ[_CONFIG_ENV] = config.model_dump_json()
    uvicorn.run(
        "modelbundle.runtime._reload:app_from_env",
        factory=True,
        host=config.host,
        port=config.port,
        reload=True,
        reload_dirs=[str(watch)],
        log_level=config.log_level,
        access_log=config.access_log,
        timeout_graceful_shutdown=math.ceil(config.graceful_timeout),
    )


def app_from_env() -> ServiceApp:
    """The factory the reloader's child process calls."""
    from ._source import resolve_source

    config = ServeConfig.model_validate_json(os.environ[_CONFIG_ENV])
    source = resolve_source(os.environ[_TARGET_ENV])
    return create_app(source.service_cls, config, artifacts=source.load_artifacts)
