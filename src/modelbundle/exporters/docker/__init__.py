"""Docker images of bundles, built by a real engine from wheels gathered on the host.

``containerize`` builds (and pushes) an image; ``export_context`` writes the
build context (Dockerfile and files) for other builders. ``--target`` picks
the kind of image (``TARGETS``: docker, sagemaker, lambda-image).
"""

from __future__ import annotations

from ._containerize import (
    DOCKER_TARGET,
    IMAGE_TARGET_LABEL,
    IMAGE_WEIGHTS_LABEL,
    LABEL_PREFIX,
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
from ._engine import BuiltImage, connect, local_image_labels
from ._extras import ImageExtras, MovedPin, image_lock_text, resolve_extras
from ._platform import DEFAULT_PLATFORM, ImagePlatform
from ._targets import DEFAULT_TARGET, TARGETS, ImageTarget, image_target
from ._weights import WEIGHTS_CACHE, WeightsMode, plan_weights
from ._wheels import WheelCache, gather_wheels

__all__ = [
    "BUNDLE_DIR",
    "DEFAULT_PLATFORM",
    "DEFAULT_PORT",
    "DEFAULT_TARGET",
    "DOCKER_TARGET",
    "IMAGE_TARGET_LABEL",
    "IMAGE_WEIGHTS_LABEL",
    "LABEL_PREFIX",
    "TARGETS",
    "USER_ID",
    "VENV_DIR",
    "WEIGHTS_CACHE",
    "BuiltImage",
    "ContainerizeOptions",
    "ContainerizeResult",
    "HealthCheck",
    "ImageExtras",
    "ImagePlatform",
    "ImageRecipe",
    "ImageTarget",
    "MovedPin",
    "WeightsMode",
    "WheelCache",
    "bundle_digest",
    "plan_weights",
    "connect",
    "containerize",
    "default_base_image",
    "default_tag",
    "export_context",
    "gather_wheels",
    "image_labels",
    "image_lock_text",
    "image_target",
    "local_image_labels",
    "render_dockerfile",
    "resolve_extras",
    "server_recipe",
]
