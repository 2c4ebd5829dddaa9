"""Names, labels and image references that Kubernetes accepts, derived from a bundle's name and version."""

from __future__ import annotations

import re

from ...errors import ExportError

#: a DNS-1035 label: what a Service name must be (and so, for one name everywhere, every resource here)
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: the distribution reference grammar: [host[:port]/]path[:tag][@digest]
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"^(?:(?P<host>{_HOST})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?$"
)
#: the prefix of the labels and annotations modelbundle itself sets
LABEL_PREFIX = "modelbundle.dev/"


def resource_name(bundle_name: str) -> str:
    """A DNS-1035 label for a bundle name: lowercase, ``.``/``_`` become ``-``, a leading digit gets ``mb-``."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", bundle_name.lower())).strip("-")
    if not name[:1].isalpha():
        name = f"mb-{name}"
    return name[:63].rstrip("-")


def check_resource_name(name: str, what: str = "--name") -> str:
    if not _DNS_LABEL.match(name):
        raise ExportError(
            f"{what}: {name!r} is not a valid Kubernetes name; use 1-63 lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return name


def label_value(value: str) -> str:
    """``value`` cut to what a label value may hold (63 characters, alphanumeric at both ends)."""
    cut = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63]
    cut = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cut)
    assert _LABEL_VALUE.match(cut), cut
    return cut


def check_image(image: str) -> str:
    """``image`` if it is a valid image reference, else an ``ExportError`` that says what is wrong."""
    if not image or image != image.strip() or any(c.isspace() for c in image):
        raise ExportError(f"--image: {image!r} is not an image reference (it is empty or has spaces)")
    match = _IMAGE.match(image)
    if match is None:
        hint = " (repository names are lowercase)" if _IMAGE.match(image.lower()) else ""
        raise ExportError(
            f"--image: {image!r} is not a valid image reference{hint}; "
            "expected [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/models/iris:1a2b3c"
        )
    return image


def image_pinned(image: str) -> bool:
    """True when the reference names a digest or a tag other than ``latest``: safe to cache on the node."""
    match = _IMAGE.match(image)
    assert match is not None
    return bool(match["digest"]) or match["tag"] not in (None, "latest")
