"""The checked, resolved description of one API, as the runtime and the bundler read it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..adapters import Adapter


@dataclass(frozen=True)
class Param:
    """One parameter of an API: its wire name, adapter and default."""

    name: str
    adapter: Adapter
    required: bool
    default: Any = None


@dataclass(frozen=True)
class APIMethod:
    """One ``@api`` method after inspection: everything needed to serve and document it."""

    name: str
    route: str
    params: tuple[Param, ...]
    output: Adapter
    #: runs on the event loop: an ``async def`` or an async generator function
    is_async: bool
    batchable: bool
    max_batch_size: int
    max_latency_ms: float
    batch_dim: int
    doc: str
    #: the API answers with a stream of items; ``output`` encodes each item
    streaming: bool = False
    #: served as a WebSocket (GET): the one parameter is the stream of incoming messages,
    #: decoded one by one by its adapter; ``streaming`` is also set
    websocket: bool = False

    @functools.cached_property
    def param_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    @property
    def single_param(self) -> Param | None:
        """The parameter of a one-parameter API (which also accepts a bare body)."""
        return self.params[0] if len(self.params) == 1 else None
