"""The X-Request-ID of the request being served, for the code that runs for it.

An API endpoint sets it as a request arrives (each request runs in its own task, and a
sync API's thread copies the task's context), so a call to a dependency served elsewhere
hands the entry request's id on (``_composition/_remote.py``).
"""

from __future__ import annotations

from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("modelbundle_request_id", default=None)


def set_request_id(request_id: bytes) -> None:
    _current.set(request_id.decode("latin-1"))


def current_request_id() -> str | None:
    """The id of the request this code runs for; None outside a request (a batch serves several)."""
    return _current.get()
