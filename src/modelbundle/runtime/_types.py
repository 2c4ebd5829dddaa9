"""ASGI type aliases shared by the runtime's modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: calls one API with decoded keyword arguments: awaited, on a thread, or through its batcher
Invoke = Callable[[dict[str, Any]], Awaitable[Any]]
