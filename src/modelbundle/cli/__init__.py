"""The command line: ``bundle`` and ``modelbundle`` (the same command) and ``python -m modelbundle``."""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
