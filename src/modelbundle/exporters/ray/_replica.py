"""What runs inside Ray: the Serve application builder ``build_app`` and the replica class it deploys.

``bundle deploy ray`` names ``build_app`` as the application's ``import_path`` and
passes ``ReplicaArgs`` as its ``args``. Each replica opens the bundle (shipped to
the cluster as the application's working_dir, or the image's /opt/bundle),
checks it against its RECORD and the installed environment against its lock,
and runs the app ``bundle serve`` runs (``create_app``) in-process behind Ray
Serve's ASGI ingress: routes, codecs, error bodies, status codes and the
micro-batcher are ours, Ray's proxy only routes. The app's lifespan startup
(artifacts, ``setup()``) runs while the replica is made (``_lifespan.py``), so a
replica takes traffic only once it is set up and a failure is reported in the
app's own words; Ray's lifespan shutdown drains the batcher and runs ``teardown()``. Every response
names the replica (``X-Replica``) and its node (``X-Replica-Node``).

Ray is imported only inside ``build_app`` and the replica, which run on the
cluster; importing this module needs no Ray.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ...errors import DeployError
from ..docker import BUNDLE_DIR
from ._lifespan import AppLifespan
from ._types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("modelbundle.ray")

#: the Serve config's import_path of every application ``bundle deploy ray`` makes
APP_BUILDER = "modelbundle.exporters.ray._replica:build_app"
REPLICA_HEADER = b"x-replica"
NODE_HEADER = b"x-replica-node"


class ReplicaArgs(BaseModel):
    """The application's ``args`` in the Serve config: which bundle each replica serves, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the deployment's name in Ray Serve (the bundle's name)
    deployment: str
    name: str
    version: str
    #: sha256 of the bundle's RECORD: the replica refuses any other bundle
    digest: str
    #: "shipped": the application's working_dir is the bundle; "image": the bundle in the image (/opt/bundle)
    source: Literal["shipped", "image"] = "shipped"
    #: ``bundle serve`` options (ServeConfig fields) for the app in each replica
    serve: dict[str, Any] = {}


def build_app(args: dict[str, Any]) -> Any:
    """Serve's application builder: one deployment of ``BundleReplica`` (replica counts come from the config)."""
    from ray import serve

    parsed = ReplicaArgs.model_validate(args)
    ingress = serve.ingress()(BundleReplica)
    deployment = serve.deployment(name=parsed.deployment)(ingress)
    return deployment.bind(parsed.model_dump())


class BundleReplica:
    """One replica: the bundle's app, made when Ray asks for it (``__serve_build_asgi_app__``)."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = ReplicaArgs.model_validate(args)

    async def __serve_build_asgi_app__(self) -> ASGIApp:
        from ray import serve
        from ray.util import get_node_ip_address

        from ...bundler import RECORD_FILE, open_bundle_dir
        from ...runtime import ServeConfig, create_app

        path = bundle_path(self.args)
        bundle = open_bundle_dir(path)  # every file checked against RECORD
        manifest = bundle.manifest
        digest = "sha256:" + hashlib.sha256((path / RECORD_FILE).read_bytes()).hexdigest()
        if (manifest.name, manifest.version, digest) != (self.args.name, self.args.version, self.args.digest):
            raise DeployError(
                f"the bundle in {path} is {manifest.name}:{manifest.version} ({digest}), not the "
                f"{self.args.name}:{self.args.version} ({self.args.digest}) this application was deployed with"
            )
        mismatches = bundle.environment_mismatches()
        if mismatches:
            raise DeployError(
                f"this node's environment does not match the lock of {manifest.tag}: {'; '.join(mismatches[:5])}; "
                f"run the cluster on an image made by `bundle containerize {manifest.tag} --target ray`"
            )
        config = ServeConfig.resolve({"access_log": False, **self.args.serve})
        app = create_app(bundle.service_class(), config, artifacts=bundle.artifact_loader(), version=bundle.manifest.version)
        lifespan = AppLifespan(app, manifest.tag)
        await lifespan.start()  # artifacts, then setup(): a failure is this replica's error, in its own words
        replica = serve.get_replica_context().replica_tag
        logger.info("replica %s serves %s from %s", replica, manifest.tag, path)
        return ReplicaHeaders(app, replica, get_node_ip_address(), lifespan)


def bundle_path(args: ReplicaArgs) -> Path:
    """Where this replica finds its bundle: the working_dir Ray unpacked it into, or the image's."""
    if args.source == "image":
        return Path(os.environ.get("MODELBUNDLE_BUNDLE_DIR", BUNDLE_DIR))
    return Path.cwd()


class ReplicaHeaders:
    """Adds ``X-Replica`` and ``X-Replica-Node`` to every HTTP response of ``app``; answers Ray's lifespan from ``lifespan``.

    Under a route prefix (``--route-prefix /scaler``) the app sees paths below it.

    The app's X-Request-ID goes: Ray's proxy gives every request an id (or keeps the
    client's), puts it in the request, where the app finds it for its error bodies,
    and adds it to the response itself.
    """

    def __init__(self, app: ASGIApp, replica: str, node: str, lifespan: AppLifespan | None = None) -> None:
        self.app = app
        self.lifespan = lifespan
        self._headers = [(REPLICA_HEADER, replica.encode("latin-1")), (NODE_HEADER, node.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.lifespan is not None:
            await self.lifespan.answer(receive, send)  # the app started when the replica was made
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"]
        if root and path.startswith(root) and path[len(root):][:1] in ("/", ""):
            # Ray passes the whole path with the route prefix as root_path (ASGI's rule); the app
            # matches its routes on the path below the prefix, as if mounted at "/": a root_path kept
            # beside the shortened path would make Starlette's mounts (/v1/models, /v2/models/...)
            # look for it again in the path and match nothing
            scope = {**scope, "path": path[len(root):] or "/", "root_path": ""}
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Ray's proxy adds X-Request-ID itself (the id it put in the request, which the app echoed)
                headers = [(key, value) for key, value in message.get("headers", []) if key.lower() != b"x-request-id"]
                message["headers"] = [*headers, *self._headers]
            await send(message)

        await self.app(scope, receive, send_named)
