"""Byte progress bars for uploads and downloads; silent under --quiet or without a terminal."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Advance = Callable[[int], None]


class TransferProgress:
    """``with progress.task("uploading env", total) as advance: advance(n)``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet  # silenced, as opposed to no terminal to draw on (weights then print lines)
        # bars need rich, one of the build tools; a runtime-only install transfers silently
        self.enabled = not quiet and sys.stderr.isatty() and importlib.util.find_spec("rich") is not None
        self._progress: Any = None

    def __enter__(self) -> TransferProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        if self._progress is None:
            yield lambda n: None
            return
        task_id = self._progress.add_task(description, total=total)
        yield lambda n: self._progress.advance(task_id, n)
        self._progress.update(task_id, completed=total)
