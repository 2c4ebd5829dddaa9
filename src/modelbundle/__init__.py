"""modelbundle: from a notebook model to a production service.

    import numpy as np
    from modelbundle import Service, api

    class Doubler(Service):
        @api(batchable=True)
        def predict(self, x: np.ndarray) -> np.ndarray:
            return x * 2

Serve it with ``bundle serve service.py:Doubler``; build it with ``bundle build``
or, from a script or notebook, ``Doubler.pack().save()``; use a built bundle in
this process with ``modelbundle.load("doubler")``. Importing this package loads
no numpy, pydantic, uvicorn or docker.
"""

from __future__ import annotations

from . import openai
from ._bundles import list_bundles, load
from ._job_context import JobContext, current_job
from ._version import __version__
from .adapters import DType, Shape
from .client import AsyncClient, Client
from .errors import DefinitionError, InvalidInput, ModelbundleError
from .service_base import Artifact, Service, api, depends

__all__ = [
    # declaring a service
    "Service",
    "api",
    "Artifact",
    "depends",
    # serving the OpenAI API (modelbundle.openai's decorators)
    "openai",
    # annotating inputs
    "DType",
    "Shape",
    # inside an API run as a job
    "current_job",
    "JobContext",
    # using built bundles from Python
    "load",
    "list_bundles",
    # calling a served bundle (the `client` extra: httpx)
    "Client",
    "AsyncClient",
    # errors user code meets or raises
    "DefinitionError",
    "InvalidInput",
    "ModelbundleError",
    "__version__",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and _name != "__version__":
        _obj.__module__ = __name__  # reprs and tracebacks show the public path
del _name, _obj
