"""The entrypoint of ``--target sagemaker`` images: ``python -m modelbundle.runtime._sagemaker_main --bundle DIR [ARGS]``.

SageMaker starts the container as ``docker run IMAGE serve``. Arguments:

- ``serve`` (or none): serve the bundle with /ping and /invocations on 0.0.0.0:8080,
  or on ``SAGEMAKER_BIND_TO_PORT``; workers from ``SAGEMAKER_MODEL_SERVER_WORKERS``,
  the request timeout from ``SAGEMAKER_MODEL_SERVER_TIMEOUT``; other settings from
  ``MODELBUNDLE_*`` as for ``bundle serve``. Artifacts come from /opt/ml/model when
  SageMaker put model data there (``bundle export sagemaker``), else from the bundle.
- ``train``: refused (exit 2); the image serves, it does not train.
- anything else runs as a command (``docker run IMAGE bash``), for debugging.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import _startup_gc
from ..errors import ModelbundleError, ServeError

SAGEMAKER_PORT = 8080
MODEL_DIR = Path("/opt/ml/model")
#: SageMaker variable -> the ServeConfig field it sets (it wins over MODELBUNDLE_*: SageMaker sets it per deployment)
_SAGEMAKER_VARIABLES = {
    "SAGEMAKER_BIND_TO_PORT": "port",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "workers",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "timeout",
}


def sagemaker_flags(env: Mapping[str, str], model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    """The flags ``serve`` runs with, from SageMaker's variables and the image's defaults."""
    flags: dict[str, Any] = {"sagemaker": True}
    if not env.get("MODELBUNDLE_HOST"):
        flags["host"] = "0.0.0.0"
    if not env.get("MODELBUNDLE_PORT"):
        flags["port"] = SAGEMAKER_PORT
    for variable, field in _SAGEMAKER_VARIABLES.items():
        value = env.get(variable, "").strip()
        if value:
            try:
                flags[field] = float(value) if field == "timeout" else int(value)
            except ValueError:
                raise ServeError(f"{variable}={value!r} is not a number") from None
    if not env.get("MODELBUNDLE_MODEL_DIR") and model_dir.is_dir() and any(model_dir.iterdir()):
        flags["model_dir"] = str(model_dir)
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    bundle = "/opt/bundle"
    if args[:1] == ["--bundle"] and len(args) > 1:
        bundle, args = args[1], args[2:]
    if args[:1] == ["train"]:
        print("this image serves a modelbundle bundle and cannot train; use it for endpoints and batch transform", file=sys.stderr)
        return 2
    if args and args[0] != "serve":
        os.execvp(args[0], args)  # e.g. docker run -it IMAGE bash
    if len(args) > 1:
        print(f"serve takes no arguments (got {' '.join(args[1:])}); set MODELBUNDLE_* variables instead", file=sys.stderr)
        return 2
    _startup_gc.pause()  # resumed once the service is ready
    from ._config import ServeConfig
    from ._server import serve

    try:
        serve(bundle, ServeConfig.resolve(sagemaker_flags(os.environ)))
    except ModelbundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
