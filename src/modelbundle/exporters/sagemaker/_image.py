"""``bundle containerize --target sagemaker``: an image that follows SageMaker's inference container contract.

SageMaker starts it as ``docker run IMAGE serve``: the entrypoint
(``modelbundle.runtime._sagemaker_main``) takes ``serve`` and runs the bundle's
server with /ping and /invocations on port 8080, or on ``SAGEMAKER_BIND_TO_PORT``
(the image says it accepts that with the ``accept-bind-to-port`` label). Unlike
the default image it runs as root: SageMaker expects root, and mounts model
data at /opt/ml/model. No HEALTHCHECK: SageMaker probes /ping itself. The venv
layer is the docker image's (built once for both; the image's non-root user is
in /etc/passwd, unused), so the two images of one bundle differ only in settings.
"""

from __future__ import annotations

from ...bundler import StoredBundle
from ..docker import BUNDLE_DIR, VENV_DIR, ImageRecipe, ImageTarget, image_labels

SAGEMAKER_PORT = 8080
ENTRY_MODULE = "modelbundle.runtime._sagemaker_main"
BIND_TO_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"


def sagemaker_recipe(bundle: StoredBundle, base_image: str) -> ImageRecipe:
    return ImageRecipe(
        base_image=base_image,
        python_version=bundle.manifest.python_minor,
        entrypoint=[f"{VENV_DIR}/bin/python", "-m", ENTRY_MODULE, "--bundle", BUNDLE_DIR],
        command=["serve"],
        port=SAGEMAKER_PORT,
        user_id=None,
        labels={**image_labels(bundle, base_image), BIND_TO_PORT_LABEL: "true"},
    )


SAGEMAKER_TARGET = ImageTarget(
    "sagemaker",
    sagemaker_recipe,
    run_hint="docker run --rm -p 8080:8080 {tag} serve   (then GET /ping, POST /invocations)",
)
