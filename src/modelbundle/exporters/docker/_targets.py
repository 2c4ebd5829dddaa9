"""``bundle containerize --target NAME``: what each kind of image adds to the common build.

Every target shares the build: the builder stage, the three layers (venv,
data, code), offline hash-checked installs. A target says only what differs:
the final stage's recipe (entrypoint, user, env, port, labels), the
requirements it adds to the bundle's lock, and files for the code layer.
Targets are found by name in ``TARGETS`` and imported when chosen, so a new
one (``ray``) is one entry here and one module beside its exporter.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ...bundler import StoredBundle
from ...errors import ExportError
from ._dockerfile import ImageRecipe

DEFAULT_TARGET = "docker"
#: target name -> "module:attribute" of its ImageTarget
TARGETS = {
    "docker": "modelbundle.exporters.docker._containerize:DOCKER_TARGET",
    "sagemaker": "modelbundle.exporters.sagemaker._image:SAGEMAKER_TARGET",
    "lambda-image": "modelbundle.exporters.awslambda._image:LAMBDA_IMAGE_TARGET",
    "ray": "modelbundle.exporters.ray._image:RAY_TARGET",
}


def _no_files(bundle: StoredBundle) -> dict[str, bytes]:
    return {}


@dataclass(frozen=True)
class ImageTarget:
    """One kind of image: how its final stage differs from the others."""

    name: str
    #: (bundle, base image) -> the final stage's recipe
    recipe: Callable[[StoredBundle, str], ImageRecipe]
    #: requirements beyond the bundle's lock, installed into the same venv (hash-checked)
    extra_requirements: tuple[str, ...] = ()
    #: absolute path in the image -> content, added to the code layer
    files: Callable[[StoredBundle], Mapping[str, bytes]] = field(default=_no_files)
    #: how to run it, printed after a build ({tag} is the image)
    run_hint: str = "docker run --rm -p 3000:3000 {tag}"


def image_target(name: str) -> ImageTarget:
    """The target called ``name``; ExportError naming the choices for any other."""
    spec = TARGETS.get(name)
    if spec is None:
        raise ExportError(f"unknown image target {name!r}; choose one of {', '.join(TARGETS)}")
    module_name, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(target, ImageTarget), spec
    return target
