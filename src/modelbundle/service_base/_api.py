"""The ``@api`` decorator: marks a Service method as an HTTP API and checks its options at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ..adapters import Adapter
from ..errors import DefinitionError

DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_LATENCY_MS = 10_000.0
API_OPTIONS_ATTR = "__modelbundle_api__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class APIOptions:
    """What ``@api(...)`` was given, attached to the function it decorates."""

    route: str | None = None
    batchable: bool = False
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    batch_dim: int = 0
    input: Adapter | Mapping[str, Adapter] | None = None
    output: Adapter | None = None
    websocket: bool = False


@overload
def api(func: F, /) -> F: ...
@overload
def api(
    *,
    route: str | None = None,
    batchable: bool = False,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
    batch_dim: int = 0,
    input: Adapter | Mapping[str, Adapter] | None = None,
    output: Adapter | None = None,
    websocket: bool = False,
) -> Callable[[F], F]: ...
def api(
    func: Callable[..., Any] | None = None,
    /,
    *,
    route: str | None = None,
    batchable: bool = False,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
    batch_dim: int = 0,
    input: Adapter | Mapping[str, Adapter] | None = None,
    output: Adapter | None = None,
    websocket: bool = False,
) -> Any:
    """Mark a ``Service`` method as an API served at ``POST /<method name>`` (or ``route``).

    Bare or with options::

        class MLP(Service):
            @api(batchable=True, max_batch_size=64, max_latency_ms=100)
            def predict(self, x: np.ndarray) -> np.ndarray:  # x: a batch, rows along axis 0
                return x @ self.w

            @api
            async def describe(self, q: Query) -> Answer: ...

    ``batchable=True`` lets the server merge concurrent requests along ``batch_dim``
    into one call of at most ``max_batch_size`` rows; a request that cannot be
    answered within ``max_latency_ms`` gets a 503. ``input`` (an adapter, or a
    mapping of parameter name to adapter) and ``output`` override the adapters
    inferred from the type hints.

    A generator (or a method annotated ``-> Iterator[T]`` / ``-> AsyncIterator[T]``)
    streams: each item goes out as it is yielded, as Server-Sent Events or NDJSON.
    ``websocket=True`` serves ``async def f(self, messages: AsyncIterator[In]) ->
    AsyncIterator[Out]`` as a WebSocket at ``GET /<method name>`` (or ``route``).
    """
    options = _check_options(
        route=route,
        batchable=batchable,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        batch_dim=batch_dim,
        input=input,
        output=output,
        websocket=websocket,
    )

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(function):
            raise DefinitionError(f"@api decorates a method, not {function!r}")
        setattr(function, API_OPTIONS_ATTR, options)  # a mark, not a wrapper: the method stays callable as is
        return function

    return mark(func) if func is not None else mark


def _check_options(**kwargs: Any) -> APIOptions:
    route = kwargs["route"]
    if route is not None and (not isinstance(route, str) or not route.startswith("/") or route == "/"):
        raise DefinitionError(f"@api(route=...) must be a path such as '/predict', got {route!r}")
    if not isinstance(kwargs["batchable"], bool):
        raise DefinitionError(f"@api(batchable=...) must be True or False, got {kwargs['batchable']!r}")
    size = kwargs["max_batch_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DefinitionError(f"@api(max_batch_size=...) must be an int >= 1, got {size!r}")
    latency = kwargs["max_latency_ms"]
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency <= 0:
        raise DefinitionError(f"@api(max_latency_ms=...) must be a number > 0, got {latency!r}")
    dim = kwargs["batch_dim"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
        raise DefinitionError(f"@api(batch_dim=...) must be an int >= 0, got {dim!r}")
    given_input = kwargs["input"]
    if given_input is not None and not isinstance(given_input, Adapter | Mapping):
        raise DefinitionError(f"@api(input=...) must be an adapter or a mapping of parameter name to adapter, got {given_input!r}")
    if kwargs["output"] is not None and not isinstance(kwargs["output"], Adapter):
        raise DefinitionError(f"@api(output=...) must be an adapter, got {kwargs['output']!r}")
    if not isinstance(kwargs["websocket"], bool):
        raise DefinitionError(f"@api(websocket=...) must be True or False, got {kwargs['websocket']!r}")
    if kwargs["websocket"] and kwargs["batchable"]:
        raise DefinitionError("@api(websocket=True) cannot be batchable: each socket is its own stream")
    kwargs["max_latency_ms"] = float(latency)
    return APIOptions(**kwargs)
