"""The seam between a dependency's handle and wherever the dependency runs.

A handle (``_handle.py``) checks a call against the dependency's declared APIs,
then hands Python values to a transport; the transport runs the API and hands
Python values back. ``InProcess`` (``_in_process.py``) calls the dependency's
own invokers in this process; an HTTP transport calls a dependency served
elsewhere. Either raises the ``DependencyError`` family (``modelbundle.errors``)
for a failed call: ``DependencyUnavailable`` (503), ``DependencyTimeout`` (504),
or a ``DependencyError`` carrying the dependency's own 4xx status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class Transport(Protocol):
    """Runs the APIs of one dependency service; the handle never knows where."""

    #: the dependency's service name, for error messages
    dependency: str

    async def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Run a non-streaming API with checked keyword arguments; its return value."""
        ...

    async def stream(self, api_name: str, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Open a streaming API: awaiting this starts it (a failure before the first item raises
        here), then the items come from the returned async iterator."""
        ...
