"""The Docker Engine API through the ``docker`` SDK: the one place its errors become ExportErrors.

The SDK's streaming calls (build, push) report failures as chunks, not
exceptions, so every chunk is checked here. Builds go through the Engine API's
``/build``, which is the classic builder: every step leaves an image, and those
images are its build cache (BuildKit's cache, which ``docker builder prune``
empties, is not used). A builder stage's steps are therefore images too: the
build's log names them (``BuildStep``), so the caller can remove exactly the
ones this build made.
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
_STEP = re.compile(r"^Step \d+/\d+ : (.*)$")
#: the image a step ended with (the classic builder prints short ids)
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12})$")


@dataclass(frozen=True)
class BuiltImage:
    id: str
    tag: str
    #: the uncompressed digests of the image's layers (RootFS.Layers), base image layers first
    layers: list[str]
    size: int


@dataclass(frozen=True)
class BuildStep:
    """One step of a classic build, from its log: the instruction and the image it left."""

    instruction: str
    image_id: str
    cached: bool


@dataclass(frozen=True)
class Build:
    image: BuiltImage
    steps: list[BuildStep]


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


def ensure_base_image(client: Any, image: str, platform: ImagePlatform, reporter: Reporter) -> list[str]:
    """The base image is here (pulled if need be) and is built for ``platform``; returns its layers."""
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
    return list(found.attrs["RootFS"].get("Layers", []))


class ImageBuildError(ExportError):
    """A build that failed; ``steps`` are the images its finished steps made (for the caller to remove)."""

    def __init__(self, message: str, steps: list[BuildStep]) -> None:
        super().__init__(message)
        self.steps = steps


def build_image(client: Any, context: IO[bytes], tag: str, reporter: Reporter, *, no_cache: bool = False) -> Build:
    """Build from a tar context with no network (the build installs only what the context holds)."""
    import docker

    image_id = None
    log: list[str] = []
    steps: list[BuildStep] = []
    instruction, cached = "", False
    try:
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, nocache=no_cache,
            network_mode="none", pull=False, decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = "\n".join(line for line in log[-8:] if line.strip())
                raise ImageBuildError(f"the image build failed: {chunk['error'].strip()}" + (f"\n{detail}" if detail else ""), steps)
            text = chunk.get("stream", "")
            for line in text.splitlines():
                log.append(line)
                if _SHOWN.match(line):
                    reporter.info(line)
                if step := _STEP.match(line):
                    instruction, cached = step.group(1), False
                elif line == " ---> Using cache":
                    cached = True
                elif made := _STEP_IMAGE.match(line):
                    steps.append(BuildStep(instruction, made.group(1), cached))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = aux["ID"]
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"the image build failed: {_explain(exc)}", steps) from None
    if image_id is None:
        raise ExportError("the engine finished the build without naming an image:\n" + "\n".join(log[-8:]))
    return Build(inspect_image(client, image_id, tag), steps)


def inspect_image(client: Any, image: str, tag: str) -> BuiltImage:
    attrs = client.images.get(image).attrs
    return BuiltImage(attrs["Id"], tag, list(attrs["RootFS"].get("Layers", [])), int(attrs["Size"]))


def find_image(client: Any, image: str) -> BuiltImage | None:
    """``image`` (a tag or id) if the engine has it, else None."""
    import docker

    try:
        return inspect_image(client, image, image)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot inspect the image {image}: {_explain(exc)}") from None


def local_image_labels(client: Any, image: str) -> dict[str, str] | None:
    """The labels of ``image`` (a tag, id or digest reference) if the engine has it, else None."""
    import docker

    try:
        attrs = client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot inspect the image {image}: {_explain(exc)}") from None
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def find_labelled(client: Any, label: str, value: str) -> list[BuiltImage]:
    """Every image whose ``label`` is ``value``, newest first (their ids as tags)."""
    import docker

    try:
        ids = [entry["Id"] for entry in client.api.images(filters={"label": f"{label}={value}"})]
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot list the engine's images: {_explain(exc)}") from None
    return [found for found in (find_image(client, image_id) for image_id in ids) if found is not None]


def tag_image(client: Any, image_id: str, tag: str) -> None:
    import docker

    repository, name_tag = split_reference(tag)
    try:
        client.api.tag(image_id, repository, name_tag, force=True)
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot tag {image_id[:19]} as {tag}: {_explain(exc)}") from None


def remove_made_images(client: Any, steps: list[BuildStep]) -> int:
    """Remove the images these steps made, last first (cached ones stay: an earlier build made them); how many went.

    Stops at the first the engine keeps (another image was built on it meanwhile, or it is tagged).
    """
    import docker

    removed = 0
    for step in reversed(steps):
        if step.cached:
            break
        try:
            client.api.remove_image(step.image_id, noprune=True)
        except docker.errors.APIError:
            break
        removed += 1
    return removed


def remove_unused_image(client: Any, image_id: str) -> bool:
    """Remove an untagged image that no other image is built on; False if the engine keeps it."""
    import docker

    try:
        if client.api.inspect_image(image_id).get("RepoTags"):
            return False  # by id, the engine would untag and remove a tagged image
        client.api.remove_image(image_id, noprune=True)
    except docker.errors.APIError:  # gone already, or the parent of an image: it stays
        return False
    return True


def split_reference(tag: str) -> tuple[str, str]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``tag``); ``tag`` is latest when the reference has none."""
    repository, _, name_tag = tag.rpartition(":")
    if not repository or "/" in name_tag:  # "host:5000/name" has no tag
        return tag, "latest"
    return repository, name_tag


def push_image(client: Any, tag: str, reporter: Reporter) -> str:
    """Push ``tag`` to the registry it names (credentials from the Docker config); returns the digest."""
    import docker

    repository, name_tag = split_reference(tag)
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
