"""Is ``--image`` an image of this bundle that the manifests can run?

The manifests assume what ``bundle containerize`` (``--target docker``) makes:
``bundle serve`` on port 3000 as user 10001. An image in the local engine is
checked by its ``ai.modelbundle.*`` labels; a mismatch (another bundle, another
version, another target) is refused, since its pods would never become ready.
An image the engine lacks cannot be checked here: the cluster must pull it, so
that is a warning, except for a bare ``NAME[:TAG]``, which a cluster would pull
from Docker Hub's official library (``docker.io/library/NAME``): never a
bundle's image, and almost always a local tag that was meant.
"""

from __future__ import annotations

from ...bundler import StoredBundle
from ...errors import ExportError
from .._image_reference import parse_image_reference

#: what the manifests run; the other targets listen elsewhere, run as root or run no server
KUBERNETES_TARGET = "docker"
#: set on SageMaker images before images carried their target label
_SAGEMAKER_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
_WHY_NOT = {
    "sagemaker": "it listens on 8080, runs as root and starts only with `serve`",
    "lambda-image": "it runs the Lambda runtime client, not an HTTP server",
    "ray": "it starts a Ray node, not the bundle's server",
}


def check_bundle_image(bundle: StoredBundle, image: str) -> str | None:
    """None when ``image`` is a local image of ``bundle`` for Kubernetes; a warning when it cannot be checked.

    Raises ``ExportError`` (one line: what the image is, and the command that makes the right one)
    when it is the image of another bundle, version or target, or a bare name the engine lacks.
    """
    labels, unchecked = _local_labels(image)
    if labels is None:
        reference = parse_image_reference(image)
        if unchecked is None and reference.host is None and "/" not in reference.path:
            raise ExportError(
                f"--image {image}: no such image in the local Docker engine, and with no registry in the name a cluster "
                f"would pull docker.io/library/{reference.path}; build it with `bundle containerize {bundle.tag} -t {image}`, "
                "then push it and name its registry (REGISTRY/REPOSITORY:TAG)"
            )
        why = unchecked or "it is not in the local Docker engine"
        return f"warning: --image {image} was not checked ({why}): the cluster must be able to pull it, and it must be an image of {bundle.tag}"
    return _compare(bundle, image, labels)


def _compare(bundle: StoredBundle, image: str, labels: dict[str, str]) -> str | None:
    from ..docker import IMAGE_TARGET_LABEL, LABEL_PREFIX, bundle_digest

    name = labels.get(f"{LABEL_PREFIX}.bundle.name")
    version = labels.get(f"{LABEL_PREFIX}.bundle.version")
    if name is None or version is None:
        return (
            f"warning: --image {image} has no {LABEL_PREFIX}.bundle labels (not made by bundle containerize): "
            f"it must serve {bundle.tag} on port 3000 as user 10001"
        )
    make = f"bundle containerize {bundle.tag}"
    if name != bundle.manifest.name:
        raise ExportError(f"--image {image} is an image of the bundle {name}:{version}, not of {bundle.tag}; make one with `{make}`")
    if version != bundle.manifest.version:
        raise ExportError(
            f"--image {image} is an image of {name}:{version}, not of {bundle.tag}; export {name}:{version}, "
            f"or make this version's image with `{make}`"
        )
    target = labels.get(IMAGE_TARGET_LABEL) or ("sagemaker" if labels.get(_SAGEMAKER_LABEL) else KUBERNETES_TARGET)
    if target != KUBERNETES_TARGET:
        why = _WHY_NOT.get(target, "the manifests run the server of the default image")
        raise ExportError(
            f"--image {image} is the --target {target} image of {bundle.tag} ({why}); Kubernetes needs the "
            f"--target {KUBERNETES_TARGET} image: `{make}`"
        )
    digest = labels.get(f"{LABEL_PREFIX}.bundle.digest")
    if digest is not None and digest != bundle_digest(bundle):
        raise ExportError(
            f"--image {image} holds another build of {bundle.tag} (its bundle digest differs); make it again with `{make}`"
        )
    return None


def _local_labels(image: str) -> tuple[dict[str, str] | None, str | None]:
    """(the image's labels, None) if the local engine has it; (None, None) if the engine lacks it;
    (None, why) when there is no engine to ask."""
    from ..docker import connect, local_image_labels

    try:
        client = connect()
    except ExportError as exc:
        return None, f"no Docker engine to look in: {str(exc).partition(' (')[0]}"
    try:
        return local_image_labels(client, image), None
    finally:
        client.close()
