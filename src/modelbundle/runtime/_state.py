"""What a worker knows about its own and its siblings' readiness, and its in-flight count."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import MutableSequence

_VALID_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")


class ServerState:
    """Readiness and load of one worker.

    ``siblings`` is a shared array with one flag per worker, plus a last
    flag the supervisor sets once every worker has been ready: /readyz waits
    for all workers at startup, but a worker being replaced later does not
    take the whole server out of rotation while the others serve.
    """

    def __init__(self, siblings: MutableSequence[int] | None = None, index: int = 0) -> None:
        self.setup_done = False
        self.draining = False
        self.in_flight = 0
        self._siblings = siblings
        self._index = index
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def mark_ready(self) -> None:
        self.setup_done = True
        if self._siblings is not None:
            self._siblings[self._index] = 1

    def mark_stopping(self) -> None:
        self.draining = True
        if self._siblings is not None:
            self._siblings[self._index] = 0

    @property
    def ready(self) -> bool:
        if not self.setup_done or self.draining:
            return False
        if self._siblings is None:
            return True
        *workers, started = self._siblings
        return bool(started) or all(workers)

    def request_id(self, given: bytes | None) -> bytes:
        """The client's X-Request-ID when it is safe to echo, else a new unique one."""
        if given is not None and _VALID_REQUEST_ID.match(given):
            return given
        return f"{self._prefix}-{next(self._counter)}".encode("ascii")
