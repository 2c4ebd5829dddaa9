"""What a client knows of each API: its route, parameters and adapters, from the served OpenAPI
document's ``x-modelbundle`` hints or from the Service class itself."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters import Adapter, adapter_from_hint


@dataclass(frozen=True)
class RemoteParam:
    name: str
    adapter: Adapter
    required: bool


@dataclass(frozen=True)
class RemoteAPI:
    """One API of a served bundle, as the client calls it."""

    name: str
    route: str
    params: tuple[RemoteParam, ...]
    output: Adapter
    streaming: bool
    doc: str
    #: the Python signature the client's method shows (the service's own when the class is given)
    signature: inspect.Signature

    @property
    def inputs(self) -> dict[str, Adapter]:
        return {p.name: p.adapter for p in self.params}

    def arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of a call, positional ones named as the signature names them."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None
        return dict(bound.arguments)


class _ServerDefault:
    """The default of a parameter the server fills in: not sent."""

    def __repr__(self) -> str:
        return "<server default>"


SERVER_DEFAULT: Any = _ServerDefault()


def apis_from_service(service_cls: type) -> dict[str, RemoteAPI]:
    """The APIs of a Service class, with its adapters and its methods' signatures."""
    found = {}
    for method in service_cls.__apis__.values():  # type: ignore[attr-defined]
        if method.websocket:
            continue  # a WebSocket is not a call; connect to it with a WebSocket library
        own = inspect.signature(getattr(service_cls, method.name))
        parameters = [p for p in own.parameters.values() if p.name != "self"]
        found[method.name] = RemoteAPI(
            name=method.name,
            route=method.route,
            params=tuple(RemoteParam(p.name, p.adapter, p.required) for p in method.params),
            output=method.output,
            streaming=method.streaming,
            doc=method.doc,
            signature=own.replace(parameters=parameters),
        )
    return found


def apis_from_openapi(document: Mapping[str, Any]) -> dict[str, RemoteAPI]:
    """The APIs of a served bundle from its ``/openapi.json`` (operations with ``x-modelbundle`` hints)."""
    found = {}
    for route, item in document.get("paths", {}).items():
        operation = item.get("post") if isinstance(item, dict) else None
        if not isinstance(operation, dict) or not isinstance(operation.get("x-modelbundle"), dict):
            continue  # health, docs, jobs and the OpenAI routes: not the bundle's own APIs
        hint = operation["x-modelbundle"]
        params = tuple(RemoteParam(p["name"], adapter_from_hint(p["adapter"]), bool(p["required"])) for p in hint["params"])
        name = operation.get("operationId") or route.strip("/")
        found[name] = RemoteAPI(
            name=name,
            route=route,
            params=params,
            output=adapter_from_hint(hint["output"]),
            streaming=bool(hint.get("streaming")),
            doc=operation.get("description", ""),
            signature=_signature(params),
        )
    return found


def _signature(params: tuple[RemoteParam, ...]) -> inspect.Signature:
    # keyword-or-positional in the API's order; an optional one defaults to what the server fills in
    ordered = sorted(params, key=lambda p: not p.required)  # a required one may not follow a default
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if [p.name for p in ordered] == [p.name for p in params] else inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(
        [inspect.Parameter(p.name, kind, default=inspect.Parameter.empty if p.required else SERVER_DEFAULT) for p in ordered]
    )
