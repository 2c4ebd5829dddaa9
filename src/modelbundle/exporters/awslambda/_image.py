"""``bundle containerize --target lambda-image``: a Lambda container image of a bundle.

Lambda runs the image's entrypoint, ``python -m awslambdaric`` (the Runtime
Interface Client, added to the bundle's lock as an extra requirement), with the
handler ``modelbundle_handler.handler``: the same handler module as the zip,
in /var/task (LAMBDA_TASK_ROOT), pointing at the bundle in /opt/bundle. The
client talks to the Runtime API at ``AWS_LAMBDA_RUNTIME_API``, which Lambda sets.
No port and no HEALTHCHECK: Lambda drives the function itself. The user is the
image's non-root one; Lambda runs images as its own non-root user anyway.
"""

from __future__ import annotations

from ...bundler import StoredBundle
from ..docker import BUNDLE_DIR, VENV_DIR, ImageRecipe, ImageTarget, image_labels
from ._entry import HANDLER, HANDLER_MODULE, handler_source
from ._streams import IMAGE_HINT, check_export

TASK_ROOT = "/var/task"
RUNTIME_CLIENT = "awslambdaric"


def lambda_image_recipe(bundle: StoredBundle, base_image: str) -> ImageRecipe:
    # its handler would refuse a streaming API at init: say so now, before an image is built
    check_export(bundle.tag, [(api.name, api.streaming, api.websocket) for api in bundle.manifest.apis], False, IMAGE_HINT)
    return ImageRecipe(
        base_image=base_image,
        python_version=bundle.manifest.python_minor,
        entrypoint=[f"{VENV_DIR}/bin/python", "-m", RUNTIME_CLIENT],
        command=[HANDLER],
        env={"LAMBDA_TASK_ROOT": TASK_ROOT, "PYTHONPATH": TASK_ROOT},
        port=None,
        workdir=TASK_ROOT,
        labels=image_labels(bundle, base_image),
    )


def lambda_image_files(bundle: StoredBundle) -> dict[str, bytes]:
    return {f"{TASK_ROOT}/{HANDLER_MODULE}.py": handler_source(BUNDLE_DIR).encode()}


LAMBDA_IMAGE_TARGET = ImageTarget(
    "lambda-image",
    lambda_image_recipe,
    extra_requirements=(RUNTIME_CLIENT,),
    files=lambda_image_files,
    run_hint="push it to ECR and create a function from it (aws lambda create-function --package-type Image --code ImageUri={tag})",
)
