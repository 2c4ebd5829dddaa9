"""The floor for serve_bench.py: the mlp example's model call behind a bare Starlette route.

Same model, same per-call cost (MLP.predict calls burn_cpu with MLP_CALL_OVERHEAD_MS,
read by MLP.setup() from the environment) and the same uvicorn settings as
``bundle serve`` with one worker, but none of modelbundle's runtime: no batching,
no thread hop, no metrics. Whatever a framework adds, it adds on top of this.

    python bench/bare_starlette.py --port 3100
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SERVICE_FILE = Path(__file__).resolve().parent.parent / "examples" / "mlp" / "service.py"


def load_mlp_module() -> ModuleType:
    """Import examples/mlp/service.py by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mlp_service", SERVICE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered before running it, so the Service base class can resolve its type hints
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def build_app() -> Starlette:
    model = load_mlp_module().MLP()
    model.setup()

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        x = np.asarray(body["x"], dtype=np.float32)
        # on the event loop, as a minimal app would; predict includes burn_cpu
        return JSONResponse(model.predict(x).tolist())

    async def readyz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", readyz, methods=["GET"])]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # loop and http stay "auto" (uvloop, httptools), as under bundle serve
    uvicorn.run(build_app(), host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
