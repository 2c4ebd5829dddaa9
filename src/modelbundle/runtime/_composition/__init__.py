"""Composition: services that call services (``depends``), in one process or over HTTP.

``Transport`` is the seam: a handle checks each call against the dependency's
APIs and hands it to a transport, which runs it in this process or elsewhere.
"""

from __future__ import annotations

from ._transport import Transport

__all__ = ["Transport"]
