"""Bundle exporters: Docker, SageMaker, Lambda, Kubernetes (later issues)."""

from __future__ import annotations

from ._image_reference import ImageReference, parse_image_reference

__all__ = ["ImageReference", "parse_image_reference"]
