"""Progress of a fetch as plain lines: one when a blob starts (its size), one when it ends (size, time, rate).

What ``ensure`` reports when no progress bars show: ``modelbundle.load`` and
``bundle serve`` (whose stderr is a log), or a command's bars without a terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .._sizes import human_size

Advance = Callable[[int], None]


class LineProgress:
    """``with progress.task("fetching x", total) as advance``: a line at the start and at the end, on stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # blobs are fetched by several threads at once

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        self._print(f"{description}: {human_size(total)}")
        done = 0
        started = time.monotonic()

        def advance(n: int) -> None:
            nonlocal done
            done += n

        yield advance
        elapsed = max(time.monotonic() - started, 1e-6)
        self._print(f"{description}: {human_size(done)} in {elapsed:.1f} s ({human_size(done / elapsed)}/s), verified")

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self._stream or sys.stderr, flush=True)


def lines_unless_shown(progress: Any) -> Any:
    """``progress`` when it shows something; otherwise lines (none under --quiet).

    No progress given, or bars that cannot show (no terminal, ``stores.TransferProgress``
    with ``enabled`` false) but were not silenced (its ``quiet``): a fetch still says what it does.
    """
    if progress is None:
        return LineProgress()
    if getattr(progress, "enabled", True) is False and not getattr(progress, "quiet", False):
        return LineProgress()
    return progress
