"""Image references as Docker reads them: ``[HOST[:PORT]/]PATH[:TAG][@DIGEST]``.

The first component is a registry host only when it has a ``.`` or a ``:`` or
is ``localhost`` (so ``UPPER/case`` is a path, and paths are lowercase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ExportError

_HOST = re.compile(
    r"^(?:localhost|\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REMAINDER = re.compile(
    rf"^(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?$"
)


@dataclass(frozen=True)
class ImageReference:
    host: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.path}" if self.host else self.path

    @property
    def pinned(self) -> bool:
        """A digest, or a tag other than ``latest``: safe for a node to cache."""
        return bool(self.digest) or self.tag not in (None, "latest")


def parse_image_reference(image: str, option: str = "--image") -> ImageReference:
    """The parts of ``image``, or an ExportError naming ``option`` and what is wrong."""
    if not image or any(c.isspace() for c in image):
        raise ExportError(f"{option}: {image!r} is not an image reference (it is empty or has spaces)")
    first, slash, rest = image.partition("/")
    host = first if slash and ("." in first or ":" in first or first == "localhost") else None
    if host is not None and not _HOST.match(host):
        raise ExportError(f"{option}: {image!r} is not a valid image reference (bad registry host {host!r})")
    match = _REMAINDER.match(rest if host is not None else image)
    if match is None:
        hint = " (repository names are lowercase)" if _REMAINDER.match((rest if host else image).lower()) else ""
        raise ExportError(
            f"{option}: {image!r} is not a valid image reference{hint}; "
            "expected [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/models/iris:1a2b3c"
        )
    return ImageReference(host, match["path"], match["tag"], match["digest"])
