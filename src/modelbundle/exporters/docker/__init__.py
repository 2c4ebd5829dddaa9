"""Docker images of bundles, built by a real engine from wheels gathered on the host.

``containerize`` builds (and pushes) an image; ``export_context`` writes the
build context (Dockerfile and files) for other builders.
"""

from __future__ import annotations

from ._containerize import (
    ContainerizeOptions,
    ContainerizeResult,
    bundle_digest,
    containerize,
    default_base_image,
    default_tag,
    export_context,
    image_labels,
    server_recipe,
)
from ._dockerfile import (
    BUNDLE_DIR,
    DEFAULT_PORT,
    USER_ID,
    VENV_DIR,
    HealthCheck,
    ImageRecipe,
    render_dockerfile,
)
from ._engine import BuiltImage, connect
from ._platform import DEFAULT_PLATFORM, ImagePlatform
from ._wheels import WheelCache, gather_wheels

__all__ = [
    "BUNDLE_DIR",
    "DEFAULT_PLATFORM",
    "DEFAULT_PORT",
    "USER_ID",
    "VENV_DIR",
    "BuiltImage",
    "ContainerizeOptions",
    "ContainerizeResult",
    "HealthCheck",
    "ImagePlatform",
    "ImageRecipe",
    "WheelCache",
    "bundle_digest",
    "connect",
    "containerize",
    "default_base_image",
    "default_tag",
    "export_context",
    "gather_wheels",
    "image_labels",
    "render_dockerfile",
    "server_recipe",
]
