"""Check a Service subclass when it is defined: signatures, hints, adapters, batching, routes.

Every message names ``Class.method`` and the rule it breaks, so a mistake shows
when the module is imported rather than on the first request.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..adapters import Adapter, adapter_for
from ..errors import DefinitionError
from ._api import API_OPTIONS_ATTR, APIOptions
from ._method import APIMethod, Param

#: paths the runtime serves itself; an API may not take them
#: (the OpenAI routes are reserved one by one: a service may have APIs of its own under /v1)
RESERVED_ROUTES = frozenset(
    {"/livez", "/readyz", "/metrics", "/docs", "/openapi.json", "/ping", "/invocations", "/v2"}
    | {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"}
)
RESERVED_PREFIXES = ("/docs/", "/v2/", "/v1/models/")

# return hints that make an API stream; typing's aliases (typing.Iterator) have these origins too
_SYNC_STREAMS = (collections.abc.Iterator, collections.abc.Iterable, collections.abc.Generator)
_ASYNC_STREAMS = (collections.abc.AsyncIterator, collections.abc.AsyncIterable, collections.abc.AsyncGenerator)


def inspect_apis(cls: type) -> dict[str, APIMethod]:
    """All ``@api`` methods of ``cls`` (inherited ones included), checked and resolved."""
    apis: dict[str, APIMethod] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            options = getattr(member, API_OPTIONS_ATTR, None)
            if isinstance(options, APIOptions):
                apis[name] = _inspect_method(cls, name, member, options)
            elif name in apis:  # overridden without @api: no longer an API
                del apis[name]
    _check_routes(cls, apis)
    return apis


def _inspect_method(cls: type, name: str, func: Callable[..., Any], options: APIOptions) -> APIMethod:
    where = f"{cls.__name__}.{name}"
    if isinstance(func, staticmethod | classmethod):
        raise DefinitionError(f"{where}: @api goes on a plain method, not a staticmethod or classmethod")
    if name.startswith("_"):
        raise DefinitionError(f"{where}: an API name may not start with '_'")
    signature = inspect.signature(func)
    hints = _type_hints(where, func)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "self":
        raise DefinitionError(f"{where}: an API is a method; its first parameter must be 'self'")

    is_generator = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
    is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
    return_hint = hints.get("return")
    stream_item = _stream_item(where, "the return type", return_hint)
    streaming = is_generator or stream_item is not None or options.websocket
    if is_generator and stream_item is None and (return_hint is not None or options.output is None):
        kind = "AsyncIterator" if inspect.isasyncgenfunction(func) else "Iterator"
        raise DefinitionError(f"{where}: a generator API streams; annotate the return type as {kind}[T] (T picks the wire format of each item)")
    if options.websocket:
        _check_websocket_signature(where, func, parameters, stream_item)

    explicit_inputs = _explicit_inputs(where, options, [p.name for p in parameters[1:]])
    params = []
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise DefinitionError(f"{where}: *args and **kwargs are not allowed; name each input")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise DefinitionError(f"{where}: parameter '{parameter.name}' must not be positional-only")
        adapter = explicit_inputs.get(parameter.name)
        if adapter is None:
            if parameter.name not in hints:
                raise DefinitionError(f"{where}: parameter '{parameter.name}' needs a type hint (it picks the wire format)")
            hint = hints[parameter.name]
            if options.websocket:  # the stream of incoming messages: each is decoded by the item's adapter
                hint = _stream_item(where, f"parameter '{parameter.name}'", hint)
            adapter = _adapter(where, f"parameter '{parameter.name}'", hint)
        required = parameter.default is parameter.empty
        params.append(Param(parameter.name, adapter, required, None if required else parameter.default))
    if not params:
        raise DefinitionError(f"{where}: an API takes at least one input parameter")

    output = options.output
    if output is None:
        if return_hint is None:
            raise DefinitionError(f"{where}: the return type needs a hint (it picks the wire format)")
        output = _adapter(where, "the return type", stream_item if streaming else return_hint)

    if options.batchable and streaming:
        raise DefinitionError(
            f"{where}: a streaming API cannot be batchable=True; each stream runs on its own "
            "(drop batchable, or return the whole result instead of yielding it)"
        )
    if options.batchable:
        for param in params:
            if not param.adapter.batchable:
                raise DefinitionError(
                    f"{where}: batchable=True needs batchable inputs (numpy arrays, lists, DataFrames); "
                    f"parameter '{param.name}' is {param.adapter.describe()}"
                )
        if not output.batchable:
            raise DefinitionError(
                f"{where}: batchable=True needs a batchable return type (numpy array, list, DataFrame), "
                f"not {output.describe()}"
            )

    return APIMethod(
        name=name,
        route=options.route or f"/{name}",
        params=tuple(params),
        output=output,
        is_async=is_async,
        batchable=options.batchable,
        max_batch_size=options.max_batch_size,
        max_latency_ms=options.max_latency_ms,
        batch_dim=options.batch_dim,
        doc=inspect.getdoc(func) or "",
        streaming=streaming,
        websocket=options.websocket,
    )


def _stream_item(where: str, what: str, annotation: Any) -> Any:
    """The item type of a stream hint (``Iterator[T]``, ``AsyncIterator[T]``...), or None if it is no stream."""
    origin = typing.get_origin(annotation) or annotation
    if origin not in _SYNC_STREAMS and origin not in _ASYNC_STREAMS:
        return None
    args = typing.get_args(annotation)
    if not args:
        raise DefinitionError(f"{where}: {what} is a stream; name its item type, e.g. {origin.__name__}[str]")
    return args[0]


def _check_websocket_signature(where: str, func: Callable[..., Any], parameters: list[inspect.Parameter], out_item: Any) -> None:
    shape = "async def f(self, messages: AsyncIterator[In]) -> AsyncIterator[Out]"
    if not (inspect.isasyncgenfunction(func) or inspect.iscoroutinefunction(func)):
        raise DefinitionError(f"{where}: a WebSocket API is async: {shape}")
    if len(parameters) != 2:
        raise DefinitionError(f"{where}: a WebSocket API takes one parameter, the stream of incoming messages: {shape}")
    hints = _type_hints(where, func)
    incoming = hints.get(parameters[1].name)
    if incoming is not None and typing.get_origin(incoming) not in _ASYNC_STREAMS:
        raise DefinitionError(f"{where}: the parameter of a WebSocket API is an AsyncIterator of messages: {shape}")
    if out_item is not None and typing.get_origin(hints.get("return")) not in _ASYNC_STREAMS:
        raise DefinitionError(f"{where}: a WebSocket API yields its answers: {shape}")


def _type_hints(where: str, func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except NameError as exc:
        raise DefinitionError(
            f"{where}: a type hint names something undefined ({exc}); "
            "define the type at module level, before the Service"
        ) from None


def _explicit_inputs(where: str, options: APIOptions, names: list[str]) -> Mapping[str, Adapter]:
    given = options.input
    if given is None:
        return {}
    if isinstance(given, Adapter):
        if len(names) != 1:
            raise DefinitionError(
                f"{where}: @api(input=adapter) fits a one-parameter API; pass a mapping of parameter name to adapter"
            )
        return {names[0]: given}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise DefinitionError(f"{where}: @api(input=...) names unknown parameters {unknown}")
    for key, adapter in given.items():
        if not isinstance(adapter, Adapter):
            raise DefinitionError(f"{where}: @api(input=...)['{key}'] must be an adapter, got {adapter!r}")
    return given


def _adapter(where: str, what: str, annotation: Any) -> Adapter:
    adapter = adapter_for(annotation)
    if adapter is None:
        shown = getattr(annotation, "__qualname__", None) or repr(annotation)
        raise DefinitionError(
            f"{where}: no adapter for {what} of type {shown}; use numpy arrays, pydantic models, "
            "dict/list/str/bytes/int/float, PIL images or pandas DataFrames, or pass an adapter with @api(input=..., output=...)"
        )
    return adapter


def _check_routes(cls: type, apis: dict[str, APIMethod]) -> None:
    seen: dict[str, str] = {}
    for method in apis.values():
        where = f"{cls.__name__}.{method.name}"
        if method.route in RESERVED_ROUTES or method.route.startswith(RESERVED_PREFIXES):
            raise DefinitionError(f"{where}: route {method.route} is reserved for the server; choose another")
        if method.route in seen:
            raise DefinitionError(f"{where}: route {method.route} is already taken by {cls.__name__}.{seen[method.route]}")
        seen[method.route] = method.name
