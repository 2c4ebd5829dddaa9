"""What a build tells the user: spinners for slow steps, notes and warnings; silent when quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Reporter:
    """Prints to stderr with rich; ``quiet`` keeps warnings only."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            try:
                from rich.console import Console
            except ImportError:  # a runtime-only install (no build extra): plain lines
                self._console = _PlainConsole()
            else:
                self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """A slow step: a spinner on a terminal, one line otherwise."""
        if self.quiet:
            yield
            return
        if sys.stderr.isatty():
            with self.console.status(text):
                yield
        else:
            self.console.print(text, markup=False)
            yield

    def info(self, text: str) -> None:
        if self.quiet:
            return
        if self._console is None:  # no spinner yet: a plain line, and no 70 ms import of rich for it
            _PlainConsole().print(text)
        else:  # through rich, which keeps a spinner's line intact
            self.console.print(text, markup=False)

    def warn(self, text: str) -> None:
        if isinstance(self.console, _PlainConsole):
            self.console.print(f"warning: {text}")
            return
        from rich.markup import escape

        self.console.print(f"[yellow]warning:[/yellow] {escape(text)}")


class _PlainConsole:
    """The part of rich's Console the Reporter uses, as plain lines on stderr."""

    def print(self, text: str, markup: bool = False) -> None:
        print(text, file=sys.stderr, flush=True)

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        self.print(text)
        yield
