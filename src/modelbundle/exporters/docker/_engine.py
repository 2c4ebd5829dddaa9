"""The Docker Engine API through the ``docker`` SDK: the one place its errors become ExportErrors.

The SDK's streaming calls (build, push) report failures as chunks, not
exceptions, so every chunk is checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any

from ...bundler import Reporter
from ...errors import ExportError
from ._platform import ImagePlatform

#: the build output worth showing: each step, and whether it came from the cache
_SHOWN = re.compile(r"^(Step \d+/\d+ : | ---> Using cache)")


@dataclass(frozen=True)
class BuiltImage:
    id: str
    tag: str
    #: the uncompressed digests of the image's layers (RootFS.Layers), base image layers first
    layers: list[str]
    size: int


def connect() -> Any:
    """A docker client for the engine in DOCKER_HOST (or the default socket), checked with a ping."""
    try:
        import docker
    except ImportError:
        raise ExportError("bundle containerize needs the docker SDK: pip install 'modelbundle[docker]'") from None
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise ExportError(
            f"cannot reach the Docker engine ({exc}); start it (on Debian: apt-get install docker.io, then dockerd) "
            "or point DOCKER_HOST at one"
        ) from None
    return client


def ensure_base_image(client: Any, image: str, platform: ImagePlatform, reporter: Reporter) -> None:
    """The base image is here (pulled if need be) and is built for ``platform``."""
    import docker

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        with reporter.step(f"pulling the base image {image} ({platform.docker})..."):
            try:
                found = client.images.pull(image, platform=platform.docker)
            except docker.errors.APIError as exc:
                raise ExportError(
                    f"the base image {image} is not on this machine and could not be pulled: {_explain(exc)}; "
                    "load or build one, or choose another with --base-image"
                ) from None
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot inspect the base image {image}: {_explain(exc)}") from None
    # the classic builder ignores the build's platform for a local base image: check it here
    have = f"{found.attrs.get('Os', '?')}/{found.attrs.get('Architecture', '?')}"
    if have != platform.docker:
        raise ExportError(f"the base image {image} is for {have}, not {platform.docker}; choose a base image for {platform.docker}")


def build_image(client: Any, context: IO[bytes], tag: str, reporter: Reporter, *, no_cache: bool = False) -> BuiltImage:
    """Build from a tar context with no network (the build installs only what the context holds)."""
    import docker

    image_id = None
    log: list[str] = []
    try:
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, nocache=no_cache,
            network_mode="none", pull=False, decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = "\n".join(line for line in log[-8:] if line.strip())
                raise ExportError(f"the image build failed: {chunk['error'].strip()}" + (f"\n{detail}" if detail else ""))
            text = chunk.get("stream", "")
            for line in text.splitlines():
                log.append(line)
                if _SHOWN.match(line):
                    reporter.info(line)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = aux["ID"]
    except docker.errors.APIError as exc:
        raise ExportError(f"the image build failed: {_explain(exc)}") from None
    if image_id is None:
        raise ExportError("the engine finished the build without naming an image:\n" + "\n".join(log[-8:]))
    return inspect_image(client, image_id, tag)


def inspect_image(client: Any, image: str, tag: str) -> BuiltImage:
    attrs = client.images.get(image).attrs
    return BuiltImage(attrs["Id"], tag, list(attrs["RootFS"].get("Layers", [])), int(attrs["Size"]))


def push_image(client: Any, tag: str, reporter: Reporter) -> str:
    """Push ``tag`` to the registry it names (credentials from the Docker config); returns the digest."""
    import docker

    repository, _, name_tag = tag.rpartition(":")
    if not repository or "/" in name_tag:  # "host:5000/name" has no tag
        repository, name_tag = tag, "latest"
    digest = None
    try:
        with reporter.step(f"pushing {repository}:{name_tag}..."):
            for chunk in client.api.push(repository, tag=name_tag, stream=True, decode=True):
                if "error" in chunk:
                    raise ExportError(f"pushing {tag} failed: {chunk['error'].strip()}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "Digest" in aux:
                    digest = aux["Digest"]
    except docker.errors.APIError as exc:
        raise ExportError(f"pushing {tag} failed: {_explain(exc)}") from None
    if digest is None:
        raise ExportError(f"the registry took {tag} but the engine reported no digest")
    return str(digest)


def _explain(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)
