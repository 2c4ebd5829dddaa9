"""``bundle containerize --target ray``: a Ray node image that holds a bundle, its environment and Ray Serve.

The venv is the bundle's lock plus ``ray[serve]`` (an extra requirement, resolved
on the host with the lock as constraints, so Ray never moves a locked pin, and
installed hash-checked from host wheels like every image). The bundle sits in
/opt/bundle as in the default image. The entrypoint is ``ray``: the same image
is a head (``docker run IMG start --head --block ...``) or a worker
(``... start --address HEAD:6379 --block``). Replicas run in the venv's
Python, so they import modelbundle, the bundle's code and its dependencies.
"""

from __future__ import annotations

from ...bundler import StoredBundle
from ..docker import BUNDLE_DIR, VENV_DIR, ImageRecipe, ImageTarget, image_labels

#: the Ray Serve we install: 2.60 has the late-bound ASGI ingress (``__serve_build_asgi_app__``) the replicas use
RAY_REQUIREMENT = "ray[serve]>=2.60,<3"
SERVE_HTTP_PORT = 8000
DASHBOARD_PORT = 8265
GCS_PORT = 6379
#: what a head runs when given no arguments (a worker passes its own: start --address HEAD:6379 --block)
HEAD_COMMAND = (
    "start", "--head", "--block", "--port", str(GCS_PORT),
    "--dashboard-host", "0.0.0.0", "--dashboard-port", str(DASHBOARD_PORT),
)


def ray_recipe(bundle: StoredBundle, base_image: str) -> ImageRecipe:
    return ImageRecipe(
        base_image=base_image,
        python_version=bundle.manifest.python_minor,
        entrypoint=[f"{VENV_DIR}/bin/ray"],
        command=list(HEAD_COMMAND),
        env={
            # no usage reports: nothing leaves the cluster
            "RAY_USAGE_STATS_ENABLED": "0",
            # each proxy spreads requests over every replica; by default a proxy keeps them on its
            # own node's replicas, so one entry point (a single load balancer target) would leave
            # the other nodes idle. `-e RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING=1` restores it.
            "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0",
            # replicas find the bundle here when it is not shipped with the deploy (--from-image)
            "MODELBUNDLE_BUNDLE_DIR": BUNDLE_DIR,
        },
        port=SERVE_HTTP_PORT,
        labels={**image_labels(bundle, base_image), "ai.modelbundle.ray.requirement": RAY_REQUIREMENT},
    )


RAY_TARGET = ImageTarget(
    "ray",
    ray_recipe,
    extra_requirements=(RAY_REQUIREMENT,),
    run_hint=(
        "docker run -d --shm-size 2g -p 8265:8265 -p 8000:8000 {tag}   (a head; workers: "
        "docker run -d --shm-size 2g {tag} start --address HEAD:6379 --block), then: bundle deploy ray NAME --address http://HEAD:8265"
    ),
)
