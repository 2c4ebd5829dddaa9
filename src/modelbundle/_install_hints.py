"""What to install when an optional part of modelbundle is missing: the hints, written once.

A bundle's environment holds only what serving needs (see docs/dev/packaging.md),
so the build side's tools (uv, pip-tools, rich, pathspec, httpx, PyYAML) are the
``build`` extra; a command that needs one names it and this line.
"""

from __future__ import annotations

BUILD_EXTRA = "pip install 'modelbundle[build]'"


def needs_build_tool(what: str, distribution: str) -> str:
    """The message for ``what`` (a command or a step) when ``distribution`` is not installed."""
    return (
        f"{what} needs {distribution}, one of modelbundle's build tools, which this environment "
        f"does not have (a bundle's runtime carries only what serving needs): {BUILD_EXTRA}"
    )


CLIENT_EXTRA = "pip install 'modelbundle[client]'"


def needs_client_library() -> str:
    """The message when ``modelbundle.Client`` is used without httpx installed."""
    return f"modelbundle.Client needs httpx, which this environment does not have: {CLIENT_EXTRA}"
