"""``InProcess``: the transport to a dependency served in this process, through its own invokers.

A call goes through the dependency's invoke, so a batchable API's concurrent
callers join its micro-batcher as HTTP requests do. Each call counts in the
dependency's request metrics; a failure becomes a ``DependencyError`` naming
the dependency (``errors_for`` maps the dependency's error to the caller's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ...errors import (
    DependencyError,
    DependencyTimeout,
    DependencyUnavailable,
    Overloaded,
    RequestError,
    RequestTimeout,
)
from .._metrics import APIMetrics
from .._types import Invoke

logger = logging.getLogger("modelbundle.server")


class InProcess:
    """Runs the APIs of one dependency service set up in this process."""

    def __init__(self, dependency: str, invokes: Mapping[str, Invoke], metrics: Mapping[str, APIMetrics]) -> None:
        self.dependency = dependency
        self._invokes = invokes
        self._metrics = metrics

    async def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        started = time.perf_counter()
        result = await self._answer(api_name, kwargs, started)
        self._metrics[api_name].observe_request(200, time.perf_counter() - started)
        return result

    async def stream(self, api_name: str, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        items = await self._answer(api_name, kwargs, started)
        return self._relay(api_name, items, started)

    async def _answer(self, api_name: str, kwargs: dict[str, Any], started: float) -> Any:
        """The invoke's answer (a stream's items); a failure is counted and named as the dependency's."""
        try:
            return await self._invokes[api_name](kwargs)
        except Exception as exc:
            error = dependency_error(self.dependency, api_name, exc)
            self._metrics[api_name].observe_request(error.status_code, time.perf_counter() - started)
            raise error from exc

    async def _relay(self, api_name: str, items: AsyncIterator[Any], started: float) -> AsyncIterator[Any]:
        status = 200
        try:
            async for item in items:
                yield item
        except Exception as exc:
            error = dependency_error(self.dependency, api_name, exc)
            status = error.status_code
            raise error from exc
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
            self._metrics[api_name].observe_request(status, time.perf_counter() - started)


def dependency_error(dependency: str, api_name: str, exc: BaseException) -> DependencyError:
    """What the caller raises when a dependency's API failed with ``exc``; it names the dependency."""
    if isinstance(exc, DependencyError):  # from further down the graph: it already names the culprit
        return exc
    if isinstance(exc, Overloaded):
        return DependencyUnavailable(dependency, f"dependency '{dependency}' is unavailable: {exc.message}", headers=exc.headers)
    if isinstance(exc, RequestTimeout):
        return DependencyTimeout(dependency, f"dependency '{dependency}' timed out: {exc.message}")
    if isinstance(exc, RequestError):  # the dependency's own verdict on what it was sent: its status passes on
        return DependencyError(
            dependency, f"dependency '{dependency}' refused {api_name}: {exc.message}",
            status_code=exc.status_code, error_type=exc.error_type, headers=exc.headers,
        )
    logger.error("dependency %s: %s raised", dependency, api_name, exc_info=exc)
    return DependencyError(dependency, f"dependency '{dependency}' failed in {api_name}: {type(exc).__name__}: {exc}")
